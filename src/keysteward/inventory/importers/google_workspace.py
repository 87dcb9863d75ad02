"""Google Workspace OAuth grants: Directory ``tokens.list`` and the token
activity report (Reports API, applicationName=token).

The directory listing gives the grants that exist now, per user. The report
gives, per user and client, the newest use ("activity" events), new grants
("authorize") and revocations ("revoke"), and ties each profile id to an
email address.
"""

from datetime import datetime
from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import (
    Where,
    as_list,
    as_object,
    as_text_list,
    parse_datetime,
    text,
)
from keysteward.inventory.records import (
    CredentialPatch,
    CredentialRecord,
    ParsedBatch,
    PersonRef,
)

TOKEN_LIST_KIND = "admin#directory#tokenList"  # noqa: S105
ACTIVITIES_KIND = "admin#reports#activities"
# Scopes that read or change everything in a product (mail, files, admin).
ADMIN_SCOPES = ("https://www.googleapis.com/auth/admin.",)
FULL_ACCESS_SCOPES = frozenset(
    {
        "https://mail.google.com/",
        "https://www.googleapis.com/auth/drive",
        "https://www.googleapis.com/auth/gmail.modify",
        "https://www.googleapis.com/auth/calendar",
    }
)


# Sign-in scopes that only reveal who the user is.
IDENTITY_SCOPES = frozenset({"openid", "email", "profile"})


# Sign-in scopes that only reveal who the user is.
IDENTITY_SCOPES = frozenset({"openid", "email", "profile"})


def _can_administer(scope: str) -> bool:
    return scope.startswith(ADMIN_SCOPES) and not scope.endswith(".readonly")


def _can_write(scope: str) -> bool:
    if scope in IDENTITY_SCOPES or scope.endswith(".readonly"):
        return False
    return "/auth/userinfo." not in scope


def grant_privilege(scopes: list[str]) -> str:
    if any(_can_administer(scope) for scope in scopes):
        return Privilege.ADMIN
    if any(scope in FULL_ACCESS_SCOPES for scope in scopes):
        return Privilege.WRITE
    if any(_can_write(scope) for scope in scopes):
        return Privilege.WRITE
    return Privilege.READ if scopes else Privilege.UNKNOWN


def grant_id(user_key: str, client_id: str) -> str:
    return f"{user_key}:{client_id}"


class DirectoryTokensImporter(Importer):
    format = "google_workspace.directory_tokens"
    source = "google_workspace"

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return isinstance(document, dict) and document.get("kind") == TOKEN_LIST_KIND

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        items = as_list(
            loaded.document.get("items"), Where(loaded.name, "document"), "items"
        )
        for index, item in enumerate(items):
            where = Where(loaded.name, f"items[{index}]")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            record = self._grant(item, where, loaded.name, index)
            batch.complete_scopes.add(record.export_scope or "")
            batch.credentials.append(record)
        return batch

    def _grant(
        self, item: dict[str, Any], where: Where, file: str, index: int
    ) -> CredentialRecord:
        client_id = text(item.get("clientId"))
        user_key = text(item.get("userKey"))
        if client_id is None:
            raise where.error("clientId", "the OAuth client id")
        if user_key is None:
            raise where.error("userKey", "the user's profile id or email")
        scopes = as_text_list(item.get("scopes"), where, "scopes")
        person = (
            PersonRef(email=user_key.lower())
            if "@" in user_key
            else PersonRef(provider="google_workspace", account_id=user_key)
        )
        return CredentialRecord(
            source="google_workspace",
            source_id=grant_id(user_key, client_id),
            system="google_workspace",
            values={
                "name": text(item.get("displayText")) or client_id,
                "kind": CredentialKind.OAUTH_TOKEN,
                "scopes": scopes,
                "privilege": grant_privilege(scopes),
                "status": CredentialStatus.ACTIVE,
            },
            attributes={
                "client_id": client_id,
                "native_app": bool(item.get("nativeApp")),
                "anonymous": bool(item.get("anonymous")),
                "identity_kind": "person",
                "source_file": file,
                "source_line": index + 1,
            },
            created_by=person,
            owner=person,
            holder_person=person,
            # tokens.list is called per user, so each user is one scope.
            export_scope=f"user:{user_key}",
        )


def _parameters(event: dict[str, Any], where: Where, field: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for parameter in as_list(event.get("parameters"), where, f"{field}.parameters"):
        if not isinstance(parameter, dict) or "name" not in parameter:
            continue
        if not isinstance(parameter["name"], str):
            raise where.error(f"{field}.parameters.name", "a string", parameter["name"])
        for key in ("value", "intValue", "boolValue", "multiValue"):
            if key in parameter:
                values[parameter["name"]] = parameter[key]
                break
    return values


class TokenActivityImporter(Importer):
    format = "google_workspace.token_activity"
    source = "google_workspace"
    order = 80

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return isinstance(document, dict) and document.get("kind") == ACTIVITIES_KIND

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        newest: dict[tuple[str, str], tuple[datetime, str, str]] = {}
        latest_use: dict[tuple[str, str], tuple[datetime, dict[str, Any], int]] = {}
        items = as_list(
            loaded.document.get("items"), Where(loaded.name, "document"), "items"
        )
        for index, item in enumerate(items):
            where = Where(loaded.name, f"items[{index}]")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            item_id = as_object(item.get("id"), where, "id")
            when = parse_datetime(item_id.get("time"), where, "id.time")
            actor = as_object(item.get("actor"), where, "actor")
            profile = text(actor.get("profileId"))
            email = text(actor.get("email"))
            if when is None or profile is None:
                raise where.error("actor.profileId", "the acting user's profile id")
            if email:
                batch.person_links.append(
                    (
                        PersonRef(email=email.lower()),
                        PersonRef(provider="google_workspace", account_id=profile),
                    )
                )
            events = as_list(item.get("events"), where, "events")
            for number, event in enumerate(events):
                field = f"events[{number}]"
                if not isinstance(event, dict):
                    raise where.error(field, "an object", event)
                params = _parameters(event, where, field)
                client_id = text(params.get("client_id"))
                if client_id is None:
                    continue
                key = (profile, client_id)
                current = newest.get(key)
                if current is None or when > current[0]:
                    newest[key] = (when, str(event.get("name")), f"items[{index}]")
                used = latest_use.get(key)
                if event.get("name") == "activity" and (used is None or when > used[0]):
                    latest_use[key] = (when, params, index)
        for (profile, client_id), (when, params, index) in latest_use.items():
            self._use(batch, profile, client_id, when, params, loaded.name, index)
        for (profile, client_id), (_, name, position) in newest.items():
            if name == "revoke":
                batch.patches.append(
                    CredentialPatch(
                        source="google_workspace",
                        match=[{"source_id": grant_id(profile, client_id)}],
                        values={"status": CredentialStatus.REVOKED},
                        where=f"{loaded.name}: {position}",
                        # A revoked grant is usually gone from tokens.list.
                        warn_if_unmatched=False,
                    )
                )
        return batch

    def _use(
        self,
        batch: ParsedBatch,
        profile: str,
        client_id: str,
        when: datetime,
        params: dict[str, Any],
        file: str,
        index: int,
    ) -> None:
        attributes: dict[str, Any] = {"usage_known": True}
        if params.get("api_name"):
            attributes["last_used_api"] = params["api_name"]
        batch.patches.append(
            CredentialPatch(
                source="google_workspace",
                match=[{"source_id": grant_id(profile, client_id)}],
                values={"last_used_at": when},
                attributes=attributes,
                where=f"{file}: items[{index}]",
            )
        )


IMPORTERS = (DirectoryTokensImporter, TokenActivityImporter)
