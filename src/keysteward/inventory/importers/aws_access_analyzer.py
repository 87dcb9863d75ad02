"""AWS IAM Access Analyzer unused-access findings (list-findings-v2 and
get-finding-v2), attached to the IAM user credentials they concern.

Findings about roles are skipped, because roles hold no long-lived
credential in the inventory. Permission findings name unused actions, not
the used ones, so they are kept as evidence (``unused_actions``) rather than
turned into ``used_scopes``.
"""

from typing import Any

from keysteward.inventory.importers.base import Importer, LoadedFile
from keysteward.inventory.parsing import Where, parse_datetime, text
from keysteward.inventory.records import CredentialPatch, ParsedBatch

USER_RESOURCE = "AWS::IAM::User"
UNUSED_KEY = "UnusedIAMUserAccessKey"
UNUSED_PASSWORD = "UnusedIAMUserPassword"  # noqa: S105
UNUSED_PERMISSION = "UnusedPermission"
FINDING_TYPES = frozenset(
    {UNUSED_KEY, UNUSED_PASSWORD, UNUSED_PERMISSION, "UnusedIAMRole"}
)


def _findings(document: Any) -> list[Any] | None:
    if isinstance(document, dict) and isinstance(document.get("findings"), list):
        return list(document["findings"])
    if isinstance(document, dict) and document.get("findingType") in FINDING_TYPES:
        return [document]
    return None


class UnusedAccessFindingsImporter(Importer):
    format = "aws.access_analyzer_findings"
    source = "aws"
    order = 85

    def matches(self, loaded: LoadedFile) -> bool:
        findings = _findings(loaded.document)
        return bool(findings) and all(
            isinstance(f, dict) and "findingType" in f for f in findings or []
        )

    def parse(self, loaded: LoadedFile) -> ParsedBatch:
        batch = self.new_batch(loaded)
        skipped = 0
        for index, finding in enumerate(_findings(loaded.document) or []):
            where = Where(loaded.name, f"finding {index + 1}")
            if finding.get("resourceType") != USER_RESOURCE:
                skipped += 1
                continue
            if str(finding.get("status", "ACTIVE")) != "ACTIVE":
                continue
            batch.patches.extend(self._patches(finding, where))
        if skipped:
            batch.warnings.append(
                f"{loaded.name}: skipped {skipped} finding(s) about IAM roles, "
                "which hold no credential in the inventory"
            )
        return batch

    def _patches(self, finding: dict[str, Any], where: Where) -> list[CredentialPatch]:
        arn = text(finding.get("resource"))
        if arn is None:
            raise where.error("resource", "the IAM user ARN the finding is about")
        finding_type = str(finding.get("findingType"))
        evidence: dict[str, Any] = {
            "id": finding.get("id"),
            "type": finding_type,
            "updated_at": _iso(
                parse_datetime(finding.get("updatedAt"), where, "updatedAt")
            ),
        }
        details = finding.get("findingDetails") or []
        unused_actions = sorted(
            action["action"]
            for detail in details
            if isinstance(detail, dict)
            for action in (detail.get("unusedPermissionDetails") or {}).get(
                "actions", []
            )
            if isinstance(action, dict) and "action" in action
        )
        if unused_actions:
            evidence["unused_actions"] = unused_actions
        attributes = {"access_analyzer": evidence}
        where_text = f"{where.file}: {where.position} ({finding_type} on {arn})"
        if finding_type == UNUSED_PASSWORD:
            match = [{"source_id": f"{arn}#password"}]
            return [self._patch(match, attributes, where_text, match_all=False)]
        key_ids = [
            detail["unusedIamUserAccessKeyDetails"].get("accessKeyId")
            for detail in details
            if isinstance(detail, dict) and "unusedIamUserAccessKeyDetails" in detail
        ]
        if finding_type == UNUSED_KEY and any(key_ids):
            return [
                self._patch(
                    [{"source_id": key_id}, {"access_key_id": key_id}],
                    attributes,
                    where_text,
                    match_all=False,
                )
                for key_id in key_ids
                if key_id
            ]
        # Without key ids the finding covers every key of the user.
        match = [{"user_arn": arn, "kind": "access_key"}]
        return [self._patch(match, attributes, where_text, match_all=True)]

    def _patch(
        self,
        match: list[dict[str, Any]],
        attributes: dict[str, Any],
        where: str,
        match_all: bool,
    ) -> CredentialPatch:
        return CredentialPatch(
            source="aws",
            match=match,
            values={},
            attributes=attributes,
            where=where,
            match_all=match_all,
        )


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


IMPORTERS = (UnusedAccessFindingsImporter,)
