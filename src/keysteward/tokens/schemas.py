from pydantic import BaseModel


class TokenResponse(BaseModel):
    """An OAuth 2.0 access token response (RFC 6749, section 5.1)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the token type name)
    expires_in: int
