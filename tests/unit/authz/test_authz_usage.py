"""Usage counts, the batching recorder, usage import and recommendations."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from keysteward.authz.engine import Decision
from keysteward.authz.models import PermissionUsage
from keysteward.authz.policy import AssignmentSpec, Policy, RoleSpec
from keysteward.authz.recommend import recommend
from keysteward.authz.services import apply_policy
from keysteward.authz.usage import (
    UsageRecord,
    UsageRecorder,
    import_usage,
    record_usage,
)
from keysteward.db import Store
from keysteward.errors import InvalidInputError
from keysteward.identities.models import ServiceAccount

SA = "service_account:svc-crm-sync"
DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _rows(store: Store) -> list[PermissionUsage]:
    with store.session() as session:
        return list(
            session.scalars(
                select(PermissionUsage).order_by(
                    PermissionUsage.permission, PermissionUsage.day
                )
            )
        )


def test_record_usage_aggregates(store: Store) -> None:
    records = [
        UsageRecord(SA, "crm:contacts:read", True, DAY),
        UsageRecord(SA, "crm:contacts:read", True, DAY + timedelta(hours=2), 4),
        UsageRecord(SA, "crm:contacts:read", False, DAY + timedelta(hours=1)),
        UsageRecord(SA, "crm:contacts:read", True, DAY + timedelta(days=1)),
    ]
    with store.session() as session:
        assert record_usage(session, records) == 2
    rows = _rows(store)
    assert len(rows) == 2
    assert rows[0].day == date(2026, 11, 20)
    assert rows[0].allowed_count == 5
    assert rows[0].denied_count == 1
    assert rows[1].allowed_count == 1


def test_record_usage_upserts(store: Store) -> None:
    for hours in (0, 3):
        with store.session() as session:
            record_usage(
                session,
                [UsageRecord(SA, "crm:a:read", True, DAY + timedelta(hours=hours), 2)],
            )
    with store.session() as session:
        record_usage(session, [UsageRecord(SA, "crm:a:read", True, DAY, 1)])
    rows = _rows(store)
    assert len(rows) == 1
    assert rows[0].allowed_count == 5
    last_seen = rows[0].last_seen_at.replace(tzinfo=UTC)
    assert last_seen == DAY + timedelta(hours=3)


def test_recorder_buffers_until_flush(store: Store) -> None:
    recorder = UsageRecorder(store, max_pending=1000)
    decision = Decision(True, SA, "crm:a:read", "granted")
    for _ in range(50):
        recorder.add(decision, at=DAY)
    assert _rows(store) == []
    assert recorder.flush() == 1
    assert _rows(store)[0].allowed_count == 50
    assert recorder.flush() == 0


def test_recorder_flushes_when_full(store: Store) -> None:
    recorder = UsageRecorder(store, max_pending=2)
    recorder.add(Decision(True, SA, "crm:a:read", "granted"), at=DAY)
    assert _rows(store) == []
    recorder.add(Decision(False, SA, "crm:b:read", "denied"), at=DAY)
    assert len(_rows(store)) == 2


def test_import_usage_csv_and_jsonl(store: Store, tmp_path: Path) -> None:
    csv_path = tmp_path / "usage.csv"
    csv_path.write_text(
        "principal,permission,at,count,decision\n"
        f"{SA},crm:a:read,2026-11-20T09:00:00Z,3,allow\n"
        f"{SA},crm:a:delete,2026-11-20T09:00:00Z,,deny\n"
    )
    jsonl_path = tmp_path / "usage.jsonl"
    jsonl_path.write_text(
        json.dumps({"principal": SA, "permission": "crm:a:read", "at": DAY.isoformat()})
        + "\n\n"
    )
    with store.session() as session:
        assert import_usage(session, csv_path) == {"records": 2, "rows": 2}
        assert import_usage(session, jsonl_path)["records"] == 1
    rows = {row.permission: row for row in _rows(store)}
    assert rows["crm:a:read"].allowed_count == 4
    assert rows["crm:a:delete"].denied_count == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"{SA},crm:a:read,yesterday,1", "invalid time"),
        (f"{SA},crm:a:read,2026-11-20T09:00:00,1", "no time zone"),
        (f"{SA},crm:../a:read,2026-11-20T09:00:00Z,1", "usage.csv:3: invalid"),
        (f"{SA},crm:a:read,2026-11-20T09:00:00Z,0", "invalid count"),
        ("robot:x,crm:a:read,2026-11-20T09:00:00Z,1", "invalid principal"),
    ],
)
def test_import_rejects_bad_rows(
    store: Store, tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        f"principal,permission,at,count\n{SA},crm:a:read,{DAY.isoformat()},1\n{line}\n"
    )
    with store.session() as session, pytest.raises(InvalidInputError, match=message):
        import_usage(session, path)
    assert _rows(store) == []


def _setup_recommend(store: Store) -> None:
    with store.session() as session:
        session.add(ServiceAccount(name="svc-crm-sync"))
        session.add(ServiceAccount(name="svc-idle"))
    policy = Policy(
        roles={
            "crm-admin": RoleSpec(
                "crm-admin",
                ("crm:*:admin", "crm:reports/**:read"),
                ("mail",),
            ),
            "mail": RoleSpec("mail", ("mail:outbox:write",)),
        },
        assignments=(
            AssignmentSpec(SA, "crm-admin"),
            AssignmentSpec("service_account:svc-idle", "mail"),
        ),
    )
    with store.session() as session:
        apply_policy(session, policy, base=None)
        now = DAY + timedelta(days=5)
        record_usage(
            session,
            [
                UsageRecord(SA, "crm:contacts:read", True, now - timedelta(days=1), 9),
                UsageRecord(SA, "crm:deals:write", True, now - timedelta(days=2)),
                UsageRecord(SA, "crm:old:delete", True, now - timedelta(days=200)),
                UsageRecord(SA, "erp:orders:read", False, now - timedelta(days=1)),
            ],
        )


def test_recommend_lists_unused_and_smaller_role(store: Store) -> None:
    _setup_recommend(store)
    with store.session() as session:
        result = recommend(session, days=90, now=DAY + timedelta(days=5))
    by_principal = {item.principal: item for item in result.principals}
    crm = by_principal[SA]
    assert crm.granted == ["crm:*:admin", "crm:reports/**:read", "mail:outbox:write"]
    assert crm.unused == ["crm:reports/**:read", "mail:outbox:write"]
    assert crm.suggested_permissions == ["crm:contacts:read", "crm:deals:write"]
    assert crm.observed_requests == 10
    idle = by_principal["service_account:svc-idle"]
    assert idle.unused == ["mail:outbox:write"]
    assert idle.suggested_permissions == []
    roles = {role.role: role for role in result.roles}
    assert roles["crm-admin"].unused == ["crm:reports/**:read"]
    assert roles["mail"].unused == ["mail:outbox:write"]
    assert roles["mail"].holders == [SA, "service_account:svc-idle"]


def test_recommend_window_includes_old_usage(store: Store) -> None:
    _setup_recommend(store)
    with store.session() as session:
        result = recommend(session, days=365, now=DAY + timedelta(days=5))
    crm = {item.principal: item for item in result.principals}[SA]
    assert "crm:old:delete" in crm.suggested_permissions
