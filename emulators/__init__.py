"""Local stand-ins for Azure services, for tests and the demo. Not deployed with the function app."""
