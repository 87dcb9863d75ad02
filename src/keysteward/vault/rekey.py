"""Rekey: move every data key under a new KEK without decrypting any value.

A rekey runs in three steps, each its own transaction:

1. create the new KEK as the active one and mark the old ones retiring, so
   new secret versions already use the new KEK;
2. rewrap data keys in batches, one transaction per batch, so a crash loses
   at most the batch in progress;
3. once no row is left under an old KEK, erase the retiring KEKs.

Running ``rekey`` again after a crash finds the unfinished job and goes on
from step 2.
"""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from keysteward.clock import utcnow
from keysteward.crypto import aead
from keysteward.db import Store
from keysteward.events.services import record_event
from keysteward.vault.keys import KeyRing, data_key_associated_data
from keysteward.vault.models import (
    KekStatus,
    KeyEncryptionKey,
    RekeyJob,
    SecretVersion,
)

DEFAULT_BATCH_SIZE = 200
JOB_RUNNING = "running"
JOB_DONE = "done"


@dataclass(frozen=True)
class RekeyResult:
    job_id: int
    kek_id: int
    rewrapped: int
    retired_kek_ids: list[int]
    resumed: bool


def _start_or_resume(
    store: Store, keyring: KeyRing, actor: str
) -> tuple[int, int, bool]:
    with store.session() as session:
        job = session.scalar(
            select(RekeyJob).where(RekeyJob.status == JOB_RUNNING).with_for_update()
        )
        if job is not None:
            return job.id, job.target_kek_id, True
        old_keks = session.scalars(
            select(KeyEncryptionKey).where(KeyEncryptionKey.status == KekStatus.ACTIVE)
        )
        for old in old_keks:
            old.status = KekStatus.RETIRING
        new_kek_id = keyring.create_kek(session)
        job = RekeyJob(target_kek_id=new_kek_id, status=JOB_RUNNING)
        session.add(job)
        record_event(
            session,
            actor=actor,
            action="vault.rekey.start",
            target_type="kek",
            target_id=new_kek_id,
        )
        session.flush()
        return job.id, new_kek_id, False


def count_rows_to_rewrap(store: Store, kek_id: int) -> int:
    with store.session() as session:
        query = select(func.count()).where(SecretVersion.kek_id != kek_id)
        return session.scalar(query.select_from(SecretVersion)) or 0


def _rewrap_batch(
    store: Store,
    keyring: KeyRing,
    job_id: int,
    kek_id: int,
    batch_size: int,
    after_row: Callable[[SecretVersion], None] | None,
) -> int:
    with store.session() as session:
        new_kek = keyring.kek(session.get_one(KeyEncryptionKey, kek_id))
        rows = list(
            session.scalars(
                select(SecretVersion)
                .where(SecretVersion.kek_id != kek_id)
                .order_by(SecretVersion.id)
                .limit(batch_size)
                .with_for_update()
            )
        )
        for row in rows:
            old_kek = keyring.kek(session.get_one(KeyEncryptionKey, row.kek_id))
            data_key = aead.unwrap_key(
                old_kek,
                row.wrapped_key,
                data_key_associated_data(row.kek_id, row.secret_id, row.version),
            )
            row.wrapped_key = aead.wrap_key(
                new_kek,
                data_key,
                data_key_associated_data(kek_id, row.secret_id, row.version),
            )
            row.kek_id = kek_id
            if after_row is not None:
                after_row(row)
        job = session.get_one(RekeyJob, job_id)
        job.rewrapped += len(rows)
        return len(rows)


def _finish(store: Store, keyring: KeyRing, job_id: int, actor: str) -> list[int]:
    with store.session() as session:
        job = session.get_one(RekeyJob, job_id)
        retiring = list(
            session.scalars(
                select(KeyEncryptionKey).where(
                    KeyEncryptionKey.status == KekStatus.RETIRING
                )
            )
        )
        now = utcnow()
        for kek in retiring:
            kek.status = KekStatus.RETIRED
            kek.wrapped_key = None
            kek.retired_at = now
            keyring.forget(kek.id)
        job.status = JOB_DONE
        job.finished_at = now
        retired_ids = [kek.id for kek in retiring]
        record_event(
            session,
            actor=actor,
            action="vault.rekey.finish",
            target_type="kek",
            target_id=job.target_kek_id,
            details={"rewrapped": job.rewrapped, "retired_kek_ids": retired_ids},
        )
        return retired_ids


def rekey(
    store: Store,
    keyring: KeyRing,
    *,
    actor: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
    after_row: Callable[[SecretVersion], None] | None = None,
) -> RekeyResult:
    """Rewrap every data key under a new KEK, or finish an interrupted rekey.

    ``on_progress(done, total)`` is called after each batch. ``after_row`` is
    called after each row is rewrapped, inside the batch's transaction; an
    exception from it rolls back that batch, as a crash would.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    job_id, kek_id, resumed = _start_or_resume(store, keyring, actor)
    total = count_rows_to_rewrap(store, kek_id)
    done = 0
    if on_progress is not None:
        on_progress(done, total)
    while True:
        count = _rewrap_batch(store, keyring, job_id, kek_id, batch_size, after_row)
        if count == 0:
            break
        done += count
        if on_progress is not None:
            on_progress(done, max(total, done))
    retired = _finish(store, keyring, job_id, actor)
    return RekeyResult(job_id, kek_id, done, retired, resumed)
