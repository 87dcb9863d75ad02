"""Reading and writing inventory records."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from keysteward.crypto.fingerprint import fingerprint, new_salt
from keysteward.meta import StoreMeta

FINGERPRINT_SALT_KEY = "fingerprint_salt"


def fingerprint_salt(session: Session) -> bytes:
    """Return this installation's fingerprint salt, creating it on first use."""
    row = session.get(StoreMeta, FINGERPRINT_SALT_KEY)
    if row is None:
        row = StoreMeta(key=FINGERPRINT_SALT_KEY, value=new_salt().hex())
        session.add(row)
        session.flush()
    return bytes.fromhex(row.value)


def fingerprint_secret(session: Session, value: str | bytes) -> str:
    """Return the installation's salted fingerprint of a secret value."""
    return fingerprint(value, fingerprint_salt(session))


def count_rows(session: Session, model: type) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(model)) or 0
