"""Okta API tokens. A token acts with the admin rights of the user who made it."""

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile, first_item
from keysteward.inventory.parsing import (
    Where,
    as_object,
    as_text_list,
    parse_datetime,
    text,
)
from keysteward.inventory.records import CredentialRecord, ParsedBatch, PersonRef

DAY_DURATION = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?$")


def parse_token_window(value: Any, where: Where) -> timedelta | None:
    """Parse the ISO 8601 durations Okta uses for tokenWindow (weeks, days)."""
    raw = text(value)
    if raw is None:
        return None
    match = DAY_DURATION.match(raw)
    if match is None or not any(match.groups()):
        raise where.error("tokenWindow", "an ISO 8601 duration such as P30D", raw)
    weeks, days = (int(part or 0) for part in match.groups())
    return timedelta(weeks=weeks, days=days)


class ApiTokensImporter(Importer):
    format = "okta.api_tokens"
    source = "okta"
    accepts_empty_list = True

    def matches(self, loaded: LoadedFile) -> bool:
        item = first_item(loaded.document)
        return (
            isinstance(loaded.document, list)
            and item is not None
            and "tokenWindow" in item
            and "userId" in item
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        # The tenant comes from each token's link, so an empty listing names
        # none and is taken as the one tenant the store has.
        batch.lists_whole_source = loaded.document == []
        for index, item in enumerate(loaded.document):
            where = Where(loaded.name, f"record {index + 1}")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            record = self._token(item, where, loaded.name, index)
            batch.complete_scopes.add(record.export_scope or "")
            batch.credentials.append(record)
        return batch

    def _token(
        self, item: dict[str, Any], where: Where, file: str, index: int
    ) -> CredentialRecord:
        token_id = text(item.get("id"))
        user_id = text(item.get("userId"))
        if token_id is None:
            raise where.error("id", "the token id")
        if user_id is None:
            raise where.error("userId", "the Okta user id of the token's creator")
        links_field = "_link" if item.get("_link") else "_links"
        links = as_object(item.get(links_field), where, links_field)
        self_link = as_object(links.get("self"), where, f"{links_field}.self")
        href = text(self_link.get("href")) or ""
        tenant = urlsplit(href).hostname or "okta"
        window = parse_token_window(item.get("tokenWindow"), where)
        expires = parse_datetime(item.get("expiresAt"), where, "expiresAt")
        network = as_object(item.get("network"), where, "network")
        attributes: dict[str, Any] = {
            "tenant": tenant,
            "client_name": text(item.get("clientName")),
            "token_window": text(item.get("tokenWindow")),
            "network_connection": text(network.get("connection")),
            "network_include": as_text_list(
                network.get("include"), where, "network.include"
            ),
            "usage_known": False,
            "identity_kind": "person",
            "source_file": file,
            "source_line": index + 1,
        }
        if expires is not None and window is not None:
            # NOTE: an estimate. expiresAt seems to slide forward on each use
            # within tokenWindow; this is not confirmed against a live tenant.
            attributes["estimated_last_used_at"] = (expires - window).isoformat()
        person = PersonRef(provider="okta", account_id=user_id)
        return CredentialRecord(
            source="okta",
            source_id=token_id,
            system="okta",
            values={
                "name": text(item.get("name")) or token_id,
                "kind": CredentialKind.API_KEY,
                "scopes": ["okta:admin-api (rights of the creating admin)"],
                "privilege": Privilege.ADMIN,
                "created_at": parse_datetime(item.get("created"), where, "created"),
                "last_rotated_at": None,
                "expires_at": expires,
                "status": CredentialStatus.ACTIVE,
            },
            attributes=attributes,
            created_by=person,
            owner=person,
            holder_person=person,
            export_scope=f"tenant:{tenant}",
        )


IMPORTERS = (ApiTokensImporter,)
