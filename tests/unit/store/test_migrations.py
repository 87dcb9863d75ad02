"""The migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import keysteward.models  # noqa: F401
from keysteward.db import Base, Store, pending_revisions


def test_migrations_match_models(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_store_at_every_head(store: Store) -> None:
    assert pending_revisions(store.engine) == set()
