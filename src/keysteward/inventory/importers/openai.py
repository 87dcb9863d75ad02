"""OpenAI organization admin keys and project API keys (unix-second times)."""

import re
from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile, first_item
from keysteward.inventory.parsing import (
    Where,
    as_object,
    from_unix,
    hint_from,
    text,
)
from keysteward.inventory.records import CredentialRecord, ParsedBatch, PersonRef

ADMIN_OBJECT = "organization.admin_api_key"
PROJECT_OBJECT = "organization.project.api_key"
PROJECT_ID = re.compile(r"(proj_[A-Za-z0-9]+)")


def _owner_person(user: dict[str, Any]) -> PersonRef | None:
    email = text(user.get("email"))
    user_id = text(user.get("id"))
    if email is None and user_id is None:
        return None
    return PersonRef(
        email=email.lower() if email else None,
        provider="openai" if user_id else None,
        account_id=user_id,
        name=text(user.get("name")),
    )


class _OpenAIKeysImporter(Importer):
    source = "openai"
    object_name: str

    def matches(self, loaded: LoadedFile) -> bool:
        item = first_item(loaded.document, "data")
        return item is not None and item.get("object") == self.object_name

    def _items(self, loaded: LoadedFile) -> list[Any]:
        data = loaded.document.get("data")
        if not isinstance(data, list):
            raise Where(loaded.name, "document").error("data", "a list of keys")
        return data

    def _base(
        self, item: dict[str, Any], where: Where, file: str, index: int
    ) -> CredentialRecord:
        key_id = text(item.get("id"))
        if key_id is None:
            raise where.error("id", "the key id, such as key_abc123")
        expires = from_unix(item.get("expires_at"), where, "expires_at")
        return CredentialRecord(
            source="openai",
            source_id=key_id,
            system="openai",
            values={
                "name": text(item.get("name")) or key_id,
                "kind": CredentialKind.API_KEY,
                "created_at": from_unix(item.get("created_at"), where, "created_at"),
                "last_rotated_at": None,
                "last_used_at": from_unix(
                    item.get("last_used_at"), where, "last_used_at"
                ),
                "expires_at": expires,
                "status": CredentialStatus.ACTIVE,
                "secret_hint": hint_from(text(item.get("redacted_value"))),
            },
            attributes={
                "usage_known": True,
                "source_file": file,
                "source_line": index + 1,
            },
        )


class AdminKeysImporter(_OpenAIKeysImporter):
    format = "openai.admin_api_keys"
    object_name = ADMIN_OBJECT

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        batch.complete_scopes.add("admin_keys")
        for index, item in enumerate(self._items(loaded)):
            where = Where(loaded.name, f"data[{index}]")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            record = self._base(item, where, loaded.name, index)
            # Admin keys manage the whole organization: users, projects, keys.
            record.values["privilege"] = Privilege.ADMIN
            record.values["scopes"] = ["organization:admin"]
            owner = as_object(item.get("owner"), where, "owner")
            record.attributes["owner_role"] = text(owner.get("role"))
            if owner.get("type") == "service_account":
                record.holder_service_account = text(owner.get("name")) or text(
                    owner.get("id")
                )
                record.attributes["identity_kind"] = "service_account"
            else:
                person = _owner_person(owner)
                record.created_by = record.owner = record.holder_person = person
                record.attributes["identity_kind"] = "person"
            record.export_scope = "admin_keys"
            batch.credentials.append(record)
        return batch


class ProjectKeysImporter(_OpenAIKeysImporter):
    """Keys of one project. The listing does not name its project, so the
    project id comes from a "project_id" field added to the file or a proj_
    id in the file name."""

    format = "openai.project_api_keys"
    object_name = PROJECT_OBJECT

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        project = text(loaded.document.get("project_id"))
        if project is None:
            found = PROJECT_ID.search(loaded.name)
            # NOTE: without a project id every such file shares one scope, so
            # import one project's keys per file name.
            project = found.group(1) if found else "default"
        scope = f"project:{project}"
        batch.complete_scopes.add(scope)
        for index, item in enumerate(self._items(loaded)):
            where = Where(loaded.name, f"data[{index}]")
            if not isinstance(item, dict):
                raise where.error("record", "an object", item)
            record = self._base(item, where, loaded.name, index)
            record.values["privilege"] = Privilege.WRITE
            record.values["scopes"] = [f"project:{project}"]
            record.attributes["project_id"] = project
            record.attributes["owner_project_access"] = text(
                item.get("owner_project_access")
            )
            owner = as_object(item.get("owner"), where, "owner")
            self._set_owner(record, owner, where)
            record.export_scope = scope
            batch.credentials.append(record)
        return batch

    def _set_owner(
        self, record: CredentialRecord, owner: dict[str, Any], where: Where
    ) -> None:
        owner_type = owner.get("type")
        if owner_type == "service_account":
            account = as_object(
                owner.get("service_account"), where, "owner.service_account"
            )
            name = text(account.get("name")) or text(account.get("id"))
            if name is None:
                raise where.error(
                    "owner.service_account.name", "the service account name"
                )
            record.holder_service_account = name
            record.attributes["identity_kind"] = "service_account"
            record.attributes["owner_role"] = text(account.get("role"))
        elif owner_type == "user":
            user = as_object(owner.get("user"), where, "owner.user")
            person = _owner_person(user)
            record.created_by = record.owner = record.holder_person = person
            record.attributes["identity_kind"] = "person"
            record.attributes["owner_role"] = text(user.get("role"))
        elif owner_type is not None:
            raise where.error("owner.type", "user or service_account", owner_type)


IMPORTERS = (AdminKeysImporter, ProjectKeysImporter)
