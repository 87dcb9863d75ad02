"""The credential inventory: every API key, token and webhook URL, without values."""
