"""Imports every domain's tables so the metadata (and Alembic) sees them all."""

from cpsync.contests.models import Contest, PlatformHealth

__all__ = ["Contest", "PlatformHealth"]
