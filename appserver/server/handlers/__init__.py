"""Request handlers that belong to the server layer (config, discovery, account)."""
