"""The email function's parts: recipients, rendering with Jinja2 templates, sending through ACS, and delivery."""
