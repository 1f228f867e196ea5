"""Key rotation over every encrypted column of the database.

Each domain lists its encrypted columns (`EncryptedColumn`: table, attribute, the purpose
used as associated data); `cpsync keys rotate` hands all of them to `rotate_columns`,
which runs in the caller's transaction: a value no key can read raises before anything
is committed, so a rotation either moves every secret or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cpsync.accounts.crypto import KeyRing
from cpsync.db import Base


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    model: type[Base]
    attribute: str
    purpose: str

    @property
    def name(self) -> str:
        return f"{self.model.__tablename__}.{self.attribute}"


async def rotate_columns(
    session: AsyncSession, keyring: KeyRing, columns: Sequence[EncryptedColumn]
) -> int:
    """Re-encrypt every value under the newest key; returns how many changed."""
    changed = 0
    for column in columns:
        for row in (await session.scalars(select(column.model))).all():
            value = getattr(row, column.attribute)
            if value is None:
                continue
            rotated = keyring.rotate(value, column.purpose)
            if rotated is not None:
                setattr(row, column.attribute, rotated)
                changed += 1
    await session.flush()
    return changed
