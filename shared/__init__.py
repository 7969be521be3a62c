"""Certificate renewal for Azure Key Vault: event handling, renewal decisions, notices and the journal."""
