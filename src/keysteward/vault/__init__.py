"""The encrypted vault: secret values, their versions and the keys that seal them."""
