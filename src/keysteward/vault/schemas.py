from pydantic import BaseModel


class SecretResponse(BaseModel):
    """A secret value: UTF-8 text, or base64 when it is binary."""

    name: str
    version: int
    value: str
    encoding: str
