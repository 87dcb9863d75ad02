"""Recording scans: hit rows, inventory links and the scan event, on both backends."""

from pathlib import Path

from sqlalchemy import select

from keysteward.credentials.models import Credential
from keysteward.credentials.services import fingerprint_salt, fingerprint_secret
from keysteward.db import Store
from keysteward.discovery.models import DiscoveryHit
from keysteward.discovery.rules import default_rules
from keysteward.discovery.scan import run_scan
from keysteward.discovery.services import record_scan
from keysteward.events.models import Event
from keysteward.identities.models import Person


def scan_and_record(store: Store, paths: list[Path]):
    with store.session() as session:
        salt = fingerprint_salt(session)
    result = run_scan(paths, default_rules(), salt)
    with store.session() as session:
        summary = record_scan(
            session, result.findings, result.stats, actor="test", roots=["x"]
        )
    return result, summary


def test_known_credential_gets_place(
    store: Store, tmp_path: Path, samples: dict
) -> None:
    text, secret = samples["openai-project-key"]
    (tmp_path / "agent.py").write_text("import openai\n" + text, encoding="utf-8")
    with store.session() as session:
        owner = Person(name="Ana Owner", email="ana@example.test")
        session.add(owner)
        session.flush()
        session.add(
            Credential(
                name="agent key",
                source="openai",
                source_id="key_1",
                owner_id=owner.id,
                fingerprint=fingerprint_secret(session, secret),
                attributes={"usage_known": True},
            )
        )
    result, summary = scan_and_record(store, [tmp_path])
    assert summary.credentials_linked == 1
    assert summary.credentials_created == 0
    with store.session() as session:
        credential = session.scalars(select(Credential)).one()
        places = credential.attributes["discovered_in"]
        assert credential.attributes["usage_known"] is True
        assert places == [
            {
                "path": f"{tmp_path.as_posix()}/agent.py",
                "line": 2,
                "rule": "openai-project-key",
            }
        ]
        hit = session.scalars(select(DiscoveryHit)).one()
        assert hit.credential_id == credential.id
        assert hit.fingerprint == credential.fingerprint


def test_unknown_credential_created(
    store: Store, tmp_path: Path, samples: dict
) -> None:
    text, secret = samples["slack-webhook-url"]
    (tmp_path / "notify.sh").write_text(f"curl -X POST {secret}\n", encoding="utf-8")
    _, summary = scan_and_record(store, [tmp_path])
    assert summary.credentials_created == 1
    with store.session() as session:
        credential = session.scalars(select(Credential)).one()
        assert credential.source == "discovery"
        assert credential.status == "active"
        assert credential.owner_id is None
        assert credential.kind == "webhook_url"
        assert credential.system is not None
        assert credential.system.name == "slack"
        assert credential.system.category == "chat"
        assert (
            credential.attributes["endpoint"]
            == "https://hooks.slack.com/services/…/…/…"
        )
        assert credential.attributes["embedded_secret"] is True
        assert credential.attributes["discovered_in"][0]["line"] == 1
        assert credential.fingerprint == fingerprint_secret(session, secret)


def test_no_plaintext_stored(store: Store, tmp_path: Path, samples: dict) -> None:
    text, secret = samples["stripe-restricted-key"]
    (tmp_path / "pay.env").write_text(text, encoding="utf-8")
    _, webhook = samples["zapier-webhook-url"]
    (tmp_path / "hook.txt").write_text(webhook, encoding="utf-8")
    scan_and_record(store, [tmp_path])
    with store.engine.connect() as connection:
        for table in ("credentials", "discovery_hits", "events"):
            query = f"SELECT * FROM {table}"  # noqa: S608 - fixed table names
            rows = connection.exec_driver_sql(query).fetchall()
            assert rows, table
            assert secret not in repr(rows), table
            assert secret[8:24] not in repr(rows), table
            assert webhook.split("/")[-2] not in repr(rows), table


def test_rescan_updates_not_duplicates(
    store: Store, tmp_path: Path, samples: dict
) -> None:
    text, _ = samples["github-pat"]
    (tmp_path / ".env").write_text(text, encoding="utf-8")
    scan_and_record(store, [tmp_path])
    _, again = scan_and_record(store, [tmp_path])
    assert again.hits_recorded == 0
    assert again.credentials_created == 0
    with store.session() as session:
        assert len(session.scalars(select(DiscoveryHit)).all()) == 1
        credential = session.scalars(select(Credential)).one()
        assert len(credential.attributes["discovered_in"]) == 1
        events = session.scalars(
            select(Event).where(Event.action == "discovery.scan")
        ).all()
        assert len(events) == 2
        assert events[0].details["findings"] == 1


def test_aws_linked_by_key_id(store: Store, tmp_path: Path, samples: dict) -> None:
    text, _ = samples["aws-access-key"]
    key_id = text.split(" = ")[1].split("\n")[0]
    (tmp_path / "credentials").write_text(text, encoding="utf-8")
    with store.session() as session:
        session.add(Credential(name="deploy", source="aws", source_id=key_id))
    _, summary = scan_and_record(store, [tmp_path])
    assert summary.credentials_linked == 1
    with store.session() as session:
        credential = session.scalars(select(Credential)).one()
        assert credential.attributes["discovered_in"][0]["rule"] == "aws-access-key"
