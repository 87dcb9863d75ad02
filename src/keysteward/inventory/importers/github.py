"""GitHub organization exports: fine-grained PAT grants and requests, and
SAML SSO credential authorizations.

A token id appears in the request listing while it waits for approval and in
the grant listing once approved, so both share one source id per token.
"""

import re
from typing import Any

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

ORG_IN_URL = re.compile(r"/orgs/([^/]+)/")
# Classic OAuth scopes that grant administration of an organization or repo.
ADMIN_SCOPE = re.compile(r"^(admin:|delete_repo$|site_admin$)")
WRITE_SCOPE = re.compile(r"^(repo$|public_repo$|workflow$|write:|gist$|user$)")
CREDENTIAL_KINDS = {
    "personal access token": CredentialKind.PERSONAL_ACCESS_TOKEN,
    "ssh key": CredentialKind.SSH_KEY,
    "oauth app token": CredentialKind.OAUTH_TOKEN,
}


def fine_grained_privilege(permissions: dict[str, Any]) -> str:
    """Return the most a fine-grained token's permission map allows."""
    level = Privilege.UNKNOWN
    for group in permissions.values():
        for name, access in (group or {}).items():
            if access == "admin" or (name == "administration" and access == "write"):
                return Privilege.ADMIN
            if access == "write":
                level = Privilege.WRITE
            elif access == "read" and level == Privilege.UNKNOWN:
                level = Privilege.READ
    return level


def classic_privilege(scopes: list[str]) -> str:
    if any(ADMIN_SCOPE.match(scope) for scope in scopes):
        return Privilege.ADMIN
    if any(WRITE_SCOPE.match(scope) for scope in scopes):
        return Privilege.WRITE
    return Privilege.READ if scopes else Privilege.UNKNOWN


def github_person(login: str | None) -> PersonRef | None:
    if not login:
        return None
    return PersonRef(provider="github", account_id=login, name=login)


class PersonalAccessTokensImporter(Importer):
    """Grants (approved tokens) and requests (tokens waiting for approval)."""

    format = "github.personal_access_tokens"
    source = "github"

    def matches(self, loaded: LoadedFile) -> bool:
        item = first_item(loaded.document)
        return (
            isinstance(loaded.document, list)
            and item is not None
            and "token_id" in item
            and "repository_selection" in item
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
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
        token_id = item.get("token_id")
        if not isinstance(token_id, int):
            raise where.error("token_id", "an integer token id", token_id)
        owner = as_object(item.get("owner"), where, "owner")
        login = text(owner.get("login"))
        if login is None:
            raise where.error("owner.login", "the GitHub login of the token owner")

        org_match = ORG_IN_URL.search(str(item.get("repositories_url", "")))
        org = org_match.group(1) if org_match else "unknown"
        is_request = "access_granted_at" not in item
        permissions = as_object(item.get("permissions"), where, "permissions")
        scopes = [
            f"{group}:{name}:{access}"
            for group, entries in sorted(permissions.items())
            for name, access in sorted(
                as_object(entries, where, f"permissions.{group}").items()
            )
        ]

        expired = bool(item.get("token_expired"))
        status = CredentialStatus.ACTIVE
        if expired:
            status = CredentialStatus.EXPIRED
        elif is_request:
            status = CredentialStatus.INACTIVE
        created = (
            item.get("created_at") if is_request else item.get("access_granted_at")
        )

        attributes: dict[str, Any] = {
            "organization": org,
            "repository_selection": text(item.get("repository_selection")),
            "usage_known": True,
            "identity_kind": "person",
            "source_file": file,
            "source_line": index + 1,
        }
        if is_request:
            attributes["access_request"] = {
                "id": item.get("id"),
                "reason": item.get("reason"),
            }
        else:
            attributes["grant_id"] = item.get("id")

        person = github_person(login)
        kind = "requests" if is_request else "grants"
        return CredentialRecord(
            source="github",
            source_id=f"fine_grained_pat:{token_id}",
            system="github",
            values={
                "name": text(item.get("token_name")) or f"token {token_id}",
                "kind": CredentialKind.PERSONAL_ACCESS_TOKEN,
                "scopes": scopes,
                "privilege": fine_grained_privilege(permissions),
                # NOTE: GitHub reports when the organization granted access,
                # not when the token was made; a token can be older.
                "created_at": parse_datetime(created, where, "access_granted_at"),
                "last_used_at": parse_datetime(
                    item.get("token_last_used_at"), where, "token_last_used_at"
                ),
                "expires_at": parse_datetime(
                    item.get("token_expires_at"), where, "token_expires_at"
                ),
                "status": status,
            },
            attributes=attributes,
            created_by=person,
            owner=person,
            holder_person=person,
            export_scope=f"org:{org}:{kind}",
        )


class CredentialAuthorizationsImporter(Importer):
    format = "github.credential_authorizations"
    source = "github"

    def matches(self, loaded: LoadedFile) -> bool:
        item = first_item(loaded.document)
        return (
            isinstance(loaded.document, list)
            and item is not None
            and "credential_type" in item
            and "credential_authorized_at" in item
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        # NOTE: the listing does not name its organization, so one scope
        # covers every credential authorization file; import one org's file.
        batch.complete_scopes.add("credential_authorizations")
        for index, item in enumerate(loaded.document):
            where = Where(loaded.name, f"record {index + 1}")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            batch.credentials.append(self._credential(item, where, loaded.name, index))
        return batch

    def _credential(
        self, item: dict[str, Any], where: Where, file: str, index: int
    ) -> CredentialRecord:
        credential_id = item.get("credential_id")
        if not isinstance(credential_id, int):
            raise where.error(
                "credential_id", "an integer credential id", credential_id
            )
        login = text(item.get("login"))
        if login is None:
            raise where.error(
                "login", "the GitHub login that authorized the credential"
            )

        kind_name = str(item.get("credential_type", "")).lower()
        scopes = as_text_list(item.get("scopes"), where, "scopes")
        title = text(item.get("authorized_credential_note")) or text(
            item.get("authorized_credential_title")
        )

        attributes: dict[str, Any] = {
            "credential_type": item.get("credential_type"),
            "usage_known": True,
            "identity_kind": "person",
            "source_file": file,
            "source_line": index + 1,
        }
        if item.get("fingerprint"):
            attributes["public_key_fingerprint"] = item["fingerprint"]
        if item.get("authorized_credential_id") is not None:
            attributes["authorized_credential_id"] = item["authorized_credential_id"]

        person = github_person(login)
        return CredentialRecord(
            source="github",
            source_id=f"credential_authorization:{credential_id}",
            system="github",
            values={
                "name": title or f"{kind_name} of {login}",
                "kind": CREDENTIAL_KINDS.get(kind_name, CredentialKind.OTHER),
                "scopes": scopes,
                # An SSH key can do whatever its user can, which the export
                # does not show.
                "privilege": classic_privilege(scopes),
                "created_at": parse_datetime(
                    item.get("credential_authorized_at"),
                    where,
                    "credential_authorized_at",
                ),
                "last_used_at": parse_datetime(
                    item.get("credential_accessed_at"), where, "credential_accessed_at"
                ),
                "expires_at": parse_datetime(
                    item.get("authorized_credential_expires_at"),
                    where,
                    "authorized_credential_expires_at",
                ),
                "status": CredentialStatus.ACTIVE,
                "secret_hint": text(item.get("token_last_eight")),
            },
            attributes=attributes,
            created_by=person,
            owner=person,
            holder_person=person,
            export_scope="credential_authorizations",
        )


IMPORTERS = (PersonalAccessTokensImporter, CredentialAuthorizationsImporter)
