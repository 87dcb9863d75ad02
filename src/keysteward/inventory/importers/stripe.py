"""Stripe managed API keys (``GET /v2/iam/api_keys``).

List items can carry the key itself in ``secret_key.token`` (and an
``encrypted_secret``). Both are removed from each item before anything else
reads it, so no later step can store or print them.
"""

from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile, first_item
from keysteward.inventory.parsing import (
    Where,
    as_text_list,
    hint_from,
    parse_datetime,
    text,
)
from keysteward.inventory.records import CredentialRecord, ParsedBatch

API_KEY_OBJECT = "v2.iam.api_key"
SECRET_FIELDS = ("token", "encrypted_secret")
STATUSES = {"active": CredentialStatus.ACTIVE, "expired": CredentialStatus.EXPIRED}


def strip_secrets(item: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of ``item`` without the secret key value fields."""
    clean = dict(item)
    for key_field in ("secret_key", "publishable_key"):
        nested = clean.get(key_field)
        if isinstance(nested, dict):
            clean[key_field] = {
                name: value
                for name, value in nested.items()
                if name not in SECRET_FIELDS
            }
    for name in SECRET_FIELDS:
        clean.pop(name, None)
    return clean


def key_privilege(redacted: str | None, key_type: str | None) -> str:
    """Return what a key can do, from its type and redacted prefix.

    A publishable key only creates client-side tokens. A restricted key
    (rk_) has the permissions chosen for it. A standard secret key (sk_)
    can do everything on the account.
    """
    if key_type == "publishable_key":
        return Privilege.READ
    if redacted and redacted.startswith("rk_"):
        return Privilege.WRITE
    if redacted and redacted.startswith("sk_"):
        return Privilege.ADMIN
    return Privilege.UNKNOWN


class ApiKeysImporter(Importer):
    format = "stripe.api_keys"
    source = "stripe"

    def matches(self, loaded: LoadedFile) -> bool:
        item = first_item(loaded.document, "data")
        return item is not None and item.get("object") == API_KEY_OBJECT

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        batch.complete_scopes.add("account")
        for index, raw in enumerate(loaded.document["data"]):
            where = Where(loaded.name, f"data[{index}]")
            if not isinstance(raw, dict):
                raise where.error("record", "an object", type(raw).__name__)
            item = strip_secrets(raw)
            batch.credentials.append(self._key(item, where, loaded.name, index))
        # Drop the secrets from the loaded document too, so no later reader
        # of the document can reach them.
        loaded.document["data"] = [
            strip_secrets(raw) if isinstance(raw, dict) else raw
            for raw in loaded.document["data"]
        ]
        return batch

    def _key(
        self, item: dict[str, Any], where: Where, file: str, index: int
    ) -> CredentialRecord:
        key_id = text(item.get("id"))
        if key_id is None:
            raise where.error("id", "the key id, such as mk_...")
        status = STATUSES.get(str(item.get("status")))
        if status is None:
            raise where.error("status", "active or expired", item.get("status"))
        key_type = text(item.get("type"))
        nested = item.get(key_type or "") if key_type else None
        redacted = None
        if isinstance(nested, dict):
            redacted = text(nested.get("secret_token_redacted")) or text(
                nested.get("token_redacted")
            )
        managed_by = item.get("managed_by")
        return CredentialRecord(
            source="stripe",
            source_id=key_id,
            system="stripe",
            values={
                "name": text(item.get("name")) or key_id,
                "kind": CredentialKind.API_KEY,
                "privilege": key_privilege(redacted, key_type),
                "created_at": parse_datetime(item.get("created"), where, "created"),
                "last_rotated_at": None,
                "last_used_at": parse_datetime(
                    item.get("last_used"), where, "last_used"
                ),
                "expires_at": parse_datetime(
                    item.get("expires_at"), where, "expires_at"
                ),
                "status": status,
                "secret_hint": hint_from(redacted),
            },
            attributes={
                "key_type": key_type,
                "livemode": bool(item.get("livemode")),
                "note": text(item.get("note")),
                "ip_allowlist": as_text_list(
                    item.get("ip_allowlist"), where, "ip_allowlist"
                ),
                "managed_by": managed_by.get("type")
                if isinstance(managed_by, dict)
                else None,
                "usage_known": True,
                "source_file": file,
                "source_line": index + 1,
            },
            export_scope="account",
        )


IMPORTERS = (ApiKeysImporter,)
