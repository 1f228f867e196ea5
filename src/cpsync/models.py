"""Imports every domain's tables so the metadata (and Alembic) sees them all.

A domain that adds a migration adds its `models` module here; the schema test in
tests/accounts/test_schema.py compares the migrated database with this metadata.
"""

from cpsync import jobs
from cpsync.accounts import models as accounts
from cpsync.calendars import models as calendars
from cpsync.contests import models as contests
from cpsync.students import models as students

__all__ = ["accounts", "calendars", "contests", "jobs", "students"]
