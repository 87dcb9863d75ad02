"""API tokens for service accounts and people, and the access tokens they buy."""
