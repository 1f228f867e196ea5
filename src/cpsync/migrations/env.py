"""Alembic environment: runs on a connection handed over by `cpsync.db.upgrade_schema`."""

from __future__ import annotations

from alembic import context

import cpsync.models  # noqa: F401 - registers every table on the metadata
from cpsync.db import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
