"""students: the lock scope of each sync run, so a redelivered run can close its
killed predecessor's row

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("student_sync_runs") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=300), nullable=True))
        batch.create_index("ix_student_sync_runs_scope_state", ["scope", "state"])


def downgrade() -> None:
    with op.batch_alter_table("student_sync_runs") as batch:
        batch.drop_index("ix_student_sync_runs_scope_state")
        batch.drop_column("scope")
