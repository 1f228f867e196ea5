"""calendars: credentials written into CalDAV addresses move into the encrypted secret

A link connected as `https://alice:pw@dav.example/cal/` kept the password in clear in
`calendar_links.target`. Each such address loses its userinfo; the username goes to
`username` and the password, encrypted with the key ring of the settings that run the
migration (`cpsync.db.upgrade_schema` hands them over), to `secret_encrypted`. Those are
the credentials the link really used: the HTTP client sent the address's userinfo in
preference to the entered ones. An address that then equals another link of the same
user is the same calendar twice: that duplicate row goes.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

from cpsync.accounts.crypto import load_keyring
from cpsync.redaction import split_userinfo
from cpsync.settings import Settings

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

# The associated data of `secret_encrypted` (cpsync.calendars.service), fixed here as the
# values stored today were sealed with it.
_PURPOSE = "calendar_links.secret"

links = sa.table(
    "calendar_links",
    sa.column("id", sa.Integer),
    sa.column("user_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("target", sa.String),
    sa.column("username", sa.String),
    sa.column("secret_encrypted", sa.Text),
)


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(links).where(links.c.kind == "caldav", links.c.target.contains("@"))
    ).all()
    moves = [(row, split_userinfo(row.target)) for row in rows]
    moves = [(row, split) for row, split in moves if split[0] != row.target]
    if not moves:
        return  # nothing to move: the key ring is not even read
    settings = context.config.attributes.get("settings") or Settings()
    keyring = load_keyring(settings)
    taken = {
        (row.user_id, row.target)
        for row in bind.execute(sa.select(links.c.user_id, links.c.target)).all()
    }
    for row, (clean, username, password) in moves:
        if (row.user_id, clean) in taken:
            bind.execute(sa.delete(links).where(links.c.id == row.id))
            continue
        taken.add((row.user_id, clean))
        values: dict[str, str] = {"target": clean}
        if username:
            values["username"] = username
        if password is not None:
            values["secret_encrypted"] = keyring.encrypt(password, _PURPOSE)
        bind.execute(sa.update(links).where(links.c.id == row.id).values(**values))


def downgrade() -> None:
    """Nothing to undo: credentials are not written back into addresses."""
