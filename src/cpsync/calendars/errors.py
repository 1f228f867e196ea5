"""Errors of the calendar sinks.

    CalendarError (CpsyncError)
    ├── PermanentCalendarError     also a PermanentError: the user or an operator must act
    │   ├── ReconnectRequiredError the refresh token was revoked or expired (`invalid_grant`):
    │   │                          mark the link "needs reconnect" and stop syncing it
    │   └── RefusedAddressError    the calendar's address breaks `cpsync.outbound`'s rule
    │                              (now: a name may have moved to a private address)
    └── RetriableCalendarError     also a RetriableError: the calendar is unavailable for now;
                                   `retry_after` seconds if the server said

Failures of single event writes are not raised: they come back as `CallResult` values
with `Outcome.FAILED`, so one bad event never hides what happened to the others.
"""

from __future__ import annotations

from cpsync.errors import CpsyncError, PermanentError, RetriableError


class CalendarError(CpsyncError):
    status_code = 502


class PermanentCalendarError(CalendarError, PermanentError):
    pass


class ReconnectRequiredError(PermanentCalendarError):
    status_code = 409


class RefusedAddressError(PermanentCalendarError):
    status_code = 422


class RetriableCalendarError(CalendarError, RetriableError):
    status_code = 503
