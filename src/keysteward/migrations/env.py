"""Alembic environment: runs on the engine that keysteward.db passes in."""

from alembic import context

import keysteward.models  # noqa: F401  (registers every table on Base.metadata)
from keysteward.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    context.run_migrations()
