"""Due selection by policy, scheduler passes, and manual rotation tasks."""

from datetime import timedelta

from sqlalchemy import select, update

from common.rotation_setup import ACTOR, add_api_token_secret, add_rotatable_secret
from keysteward.audit.config import AuditConfig, SystemOverride
from keysteward.clock import utcnow
from keysteward.credentials.models import CredentialKind
from keysteward.db import Store
from keysteward.events.models import Event
from keysteward.rotation.locks import SCHEDULER_LEASE, acquire_lease, new_owner_id
from keysteward.rotation.models import RotationState
from keysteward.rotation.queries import list_tasks
from keysteward.rotation.scheduler import due_secrets, run_due_rotations
from keysteward.rotation.services import rotate_secret
from keysteward.systems.models import System
from keysteward.vault.keys import KeyRing
from keysteward.vault.models import Secret, SecretVersion
from keysteward.vault.services import put_secret

MANUAL = {"rotator": "manual", "task_days": 7}


def _age(store: Store, name: str, days: int) -> None:
    """Make the current value of secret ``name`` look ``days`` days old."""
    with store.session() as session:
        secret_id = session.scalar(select(Secret.id).where(Secret.name == name))
        session.execute(
            update(SecretVersion)
            .where(SecretVersion.secret_id == secret_id)
            .values(created_at=utcnow() - timedelta(days=days))
        )


def _system(store: Store, name: str, max_age_days: int | None) -> int:
    with store.session() as session:
        system = System(name=name, rotation_max_age_days=max_age_days)
        session.add(system)
        session.flush()
        return system.id


def _due_names(store: Store, config: AuditConfig | None = None) -> list[str]:
    with store.session() as session:
        return [
            item.name
            for item in due_secrets(session, config or AuditConfig(), utcnow())
        ]


class TestDueSecrets:
    def test_default_max_age_is_90_days(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(store, keyring, "old", b"v" * 12, MANUAL)
        add_rotatable_secret(store, keyring, "young", b"w" * 12, MANUAL)
        _age(store, "old", 91)
        _age(store, "young", 89)

        assert _due_names(store) == ["old"]

    def test_secret_rotation_days_wins(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(
            store, keyring, "weekly", b"v" * 12, MANUAL, rotation_days=7
        )
        _age(store, "weekly", 8)

        assert _due_names(store) == ["weekly"]

    def test_system_max_age_applies(self, store: Store, keyring: KeyRing) -> None:
        strict = _system(store, "payments", 30)
        add_rotatable_secret(
            store, keyring, "stripe", b"v" * 12, MANUAL, system_id=strict
        )
        _age(store, "stripe", 31)

        assert _due_names(store) == ["stripe"]

    def test_audit_system_override_applies(
        self, store: Store, keyring: KeyRing
    ) -> None:
        lenient = _system(store, "crm", None)
        add_rotatable_secret(
            store, keyring, "hubspot", b"v" * 12, MANUAL, system_id=lenient
        )
        _age(store, "hubspot", 100)
        config = AuditConfig(systems={"crm": SystemOverride(rotation_max_age_days=180)})

        assert _due_names(store, config) == []
        assert _due_names(store) == ["hubspot"]

    def test_person_credentials_not_due(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(
            store,
            keyring,
            "alice-key",
            b"v" * 12,
            MANUAL,
            kind=CredentialKind.API_KEY,
            held_by_person=True,
        )
        _age(store, "alice-key", 400)

        assert _due_names(store) == []

    def test_secret_without_rotator_not_due(
        self, store: Store, keyring: KeyRing
    ) -> None:
        add_rotatable_secret(store, keyring, "plain", b"v" * 12, {})
        _age(store, "plain", 400)

        assert _due_names(store) == []


class TestScheduler:
    def test_pass_rotates_due_secret(self, store: Store, keyring: KeyRing) -> None:
        add_api_token_secret(store, keyring, "bot-token", grace_hours=0)
        _age(store, "bot-token", 120)

        run = run_due_rotations(store, utcnow(), keyring=keyring)

        assert not run.skipped
        assert [(result.secret, result.state) for result in run.results] == [
            ("bot-token", "done")
        ]
        assert _due_names(store) == []

    def test_pass_skipped_while_other_runs(
        self, store: Store, keyring: KeyRing
    ) -> None:
        add_api_token_secret(store, keyring, "bot-token", grace_hours=0)
        _age(store, "bot-token", 120)
        acquire_lease(store, SCHEDULER_LEASE, new_owner_id())

        run = run_due_rotations(store, utcnow(), keyring=keyring)

        assert run.skipped
        assert _due_names(store) == ["bot-token"]


class TestManualRotation:
    def test_task_opens_with_reminder(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(store, keyring, "openai", b"sk-" + b"k" * 20, MANUAL)

        result = rotate_secret(store, keyring, "openai", actor=ACTOR)

        assert result.state == RotationState.AWAITING_VALUE
        with store.session() as session:
            tasks = list_tasks(session)
            reminders = list(
                session.scalars(
                    select(Event).where(Event.action == "rotation.reminder")
                )
            )
        assert [task["secret"] for task in tasks] == ["openai"]
        assert tasks[0]["owner"] == "owner.openai@example.com"
        assert not tasks[0]["overdue"]
        assert len(reminders) == 1
        assert reminders[0].details["owner"] == "owner.openai@example.com"

    def test_overdue_task_reminds_again(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(store, keyring, "openai", b"sk-" + b"k" * 20, MANUAL)
        rotate_secret(store, keyring, "openai", actor=ACTOR)
        later = utcnow() + timedelta(days=8)

        rotate_secret(store, keyring, "openai", actor=ACTOR, now=later)

        with store.session() as session:
            reminders = list(
                session.scalars(
                    select(Event)
                    .where(Event.action == "rotation.reminder")
                    .order_by(Event.sequence)
                )
            )
            tasks = list_tasks(session, now=later)
        assert [event.details["overdue"] for event in reminders] == [False, True]
        assert tasks[0]["overdue"]

    def test_new_value_completes_task(self, store: Store, keyring: KeyRing) -> None:
        add_rotatable_secret(store, keyring, "openai", b"sk-" + b"k" * 20, MANUAL)
        rotate_secret(store, keyring, "openai", actor=ACTOR)
        with store.session() as session:
            put_secret(session, keyring, "openai", b"sk-" + b"n" * 20, actor=ACTOR)

        result = rotate_secret(store, keyring, "openai", actor=ACTOR)

        assert result.state == RotationState.DONE
        with store.session() as session:
            assert list_tasks(session) == []
            statuses = dict(
                session.execute(
                    select(SecretVersion.version, SecretVersion.status).order_by(
                        SecretVersion.version
                    )
                ).all()
            )
        assert statuses == {1: "retired", 2: "current"}
