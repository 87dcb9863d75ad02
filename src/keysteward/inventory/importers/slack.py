"""Slack approved apps (Enterprise Grid) and integration logs (webhooks).

Incoming webhooks appear only in ``team.integrationLogs``: the importer
replays each service's log entries, oldest first, to find its current state.
"""

from datetime import datetime
from typing import Any

from keysteward.credentials.models import CredentialKind, CredentialStatus, Privilege
from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import Where, as_list, as_object, from_unix, text
from keysteward.inventory.records import CredentialRecord, ParsedBatch, PersonRef

WEBHOOK_SCOPE = "incoming-webhook"
CHANGE_STATUS = {
    "added": CredentialStatus.ACTIVE,
    "enabled": CredentialStatus.ACTIVE,
    "updated": CredentialStatus.ACTIVE,
    "expanded": CredentialStatus.ACTIVE,
    "disabled": CredentialStatus.INACTIVE,
    "removed": CredentialStatus.REVOKED,
}
ADMIN_SCOPE_PREFIXES = ("admin", "admin.")
READ_SUFFIXES = (":read", ":history", ".email")


def slack_person(user_id: str | None, name: str | None = None) -> PersonRef | None:
    if not user_id:
        return None
    return PersonRef(provider="slack", account_id=user_id, name=name)


def scope_privilege(scopes: list[str]) -> str:
    if any(scope.startswith(ADMIN_SCOPE_PREFIXES) for scope in scopes):
        return Privilege.ADMIN
    if any(not scope.endswith(READ_SUFFIXES) for scope in scopes):
        return Privilege.WRITE
    return Privilege.READ if scopes else Privilege.UNKNOWN


class ApprovedAppsImporter(Importer):
    format = "slack.approved_apps"
    source = "slack"

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return isinstance(document, dict) and isinstance(
            document.get("approved_apps"), list
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        batch.complete_scopes.add("approved_apps")
        for index, item in enumerate(loaded.document["approved_apps"]):
            where = Where(loaded.name, f"approved_apps[{index}]")
            if not isinstance(item, dict) or not isinstance(item.get("app"), dict):
                raise where.error("app", "an object with the app's id and name")
            batch.credentials.append(self._app(item, where, loaded.name, index))
        return batch

    def _app(
        self, item: dict[str, Any], where: Where, file: str, index: int
    ) -> CredentialRecord:
        app = item["app"]
        app_id = text(app.get("id"))
        if app_id is None:
            raise where.error("app.id", "the Slack app id, such as A0123")
        scope_entries = as_list(item.get("scopes"), where, "scopes")
        scopes = [
            str(scope.get("name"))
            for scope in scope_entries
            if isinstance(scope, dict) and scope.get("name")
        ]
        sensitive = [
            str(scope.get("name"))
            for scope in scope_entries
            if isinstance(scope, dict) and scope.get("is_sensitive")
        ]
        resolver = as_object(item.get("last_resolved_by"), where, "last_resolved_by")
        approver = None
        if resolver.get("actor_type") == "user":
            approver = slack_person(text(resolver.get("actor_id")))
        return CredentialRecord(
            source="slack",
            source_id=f"app:{app_id}",
            system="slack",
            values={
                "name": text(app.get("name")) or app_id,
                "kind": CredentialKind.APP_INSTALLATION,
                "scopes": scopes,
                "privilege": scope_privilege(scopes),
                "created_at": from_unix(
                    item.get("date_updated"), where, "date_updated"
                ),
                "status": CredentialStatus.ACTIVE,
            },
            attributes={
                "sensitive_scopes": sensitive,
                "is_internal": bool(app.get("is_internal")),
                "is_app_directory_approved": bool(app.get("is_app_directory_approved")),
                "identity_kind": "system",
                "usage_known": False,
                "source_file": file,
                "source_line": index + 1,
            },
            created_by=approver,
            owner=approver,
            export_scope="approved_apps",
        )


class IntegrationLogsImporter(Importer):
    format = "slack.integration_logs"
    source = "slack"

    def matches(self, loaded: LoadedFile) -> bool:
        document = loaded.document
        return isinstance(document, dict) and isinstance(document.get("logs"), list)

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        # A log covers a time window, not every webhook that exists, so a
        # webhook missing from a later log is not retired.
        entries: list[tuple[datetime, int, dict[str, Any]]] = []
        for index, entry in enumerate(loaded.document["logs"]):
            where = Where(loaded.name, f"logs[{index}]")
            if not isinstance(entry, dict):
                raise where.error("log entry", "an object", entry)
            when = from_unix(entry.get("date"), where, "date")
            if when is None:
                raise where.error("date", "unix seconds as a string")
            if WEBHOOK_SCOPE in str(entry.get("scope", "")).split(","):
                entries.append((when, index, entry))
        webhooks: dict[str, CredentialRecord] = {}
        for when, index, entry in sorted(entries, key=lambda e: (e[0], e[1])):
            where = Where(loaded.name, f"logs[{index}]")
            self._replay(webhooks, when, entry, where, loaded.name, index)
        batch.credentials.extend(webhooks.values())
        return batch

    def _replay(
        self,
        webhooks: dict[str, CredentialRecord],
        when: datetime,
        entry: dict[str, Any],
        where: Where,
        file: str,
        index: int,
    ) -> None:
        service_id = text(entry.get("service_id")) or text(entry.get("app_id"))
        if service_id is None:
            raise where.error("service_id", "the integration's service_id or app_id")
        change = str(entry.get("change_type", ""))
        status = CHANGE_STATUS.get(change)
        if status is None:
            raise where.error(
                "change_type", "added, removed, enabled, disabled or updated", change
            )
        record = webhooks.get(service_id)
        if record is None:
            user = slack_person(
                text(entry.get("user_id")), text(entry.get("user_name"))
            )
            channel = text(entry.get("channel"))
            record = CredentialRecord(
                source="slack",
                source_id=f"webhook:{service_id}",
                system="slack",
                values={
                    "name": f"{entry.get('service_type') or 'incoming webhook'}"
                    + (f" to {channel}" if channel else ""),
                    "kind": CredentialKind.WEBHOOK_URL,
                    "scopes": [f"channel:{channel}:post" if channel else WEBHOOK_SCOPE],
                    "privilege": Privilege.WRITE,
                    "created_at": when,
                },
                attributes={
                    "channel": channel,
                    "service_type": text(entry.get("service_type")),
                    "endpoint": "https://hooks.slack.com/services/***",
                    "embedded_secret": True,
                    "identity_kind": "system",
                    "usage_known": False,
                    "source_file": file,
                    "source_line": index + 1,
                },
                created_by=user,
                owner=user,
            )
            webhooks[service_id] = record
        record.values["status"] = status
        record.attributes["last_change"] = change
        record.attributes["last_change_at"] = when.isoformat()
        if entry.get("reason"):
            record.attributes["last_change_reason"] = entry["reason"]


IMPORTERS = (ApprovedAppsImporter, IntegrationLogsImporter)
