"""People who operate keysteward: passwords, TOTP, sessions and operator roles."""
