"""The root of cpsync's error tree.

Everything cpsync raises on purpose is a `CpsyncError`: it carries a human message and
the HTTP status a web handler should answer with. Failures of a remote site (an HTTP
answer, a calendar server, Codeforces, a platform's page) are split in two by what the
caller should do next:

    CpsyncError(message, status_code)           anything cpsync raises on purpose
    ├── PermanentError                          retrying will not help; a person must act
    │   ├── http.PermanentUpstreamError         a 4xx other than 429
    │   │   └── http.ResponseTooLargeError      the body passed the size cap
    │   ├── calendars.errors.PermanentCalendarError
    │   │   ├── ReconnectRequiredError          the Google grant was revoked or expired
    │   │   └── RefusedAddressError             the calendar's address breaks the outbound rule
    │   ├── platforms.base.ParseError(platform) an answer we could not understand
    │   └── students.codeforces_api.CodeforcesPermanentError
    │       ├── HandleNotFoundError             no Codeforces user with that handle
    │       ├── CodeforcesFailedError           a FAILED answer for another reason
    │       └── UnreadableAnswerError           a body we could not understand
    └── RetriableError(retry_after)             try again later: after `retry_after` seconds
        │                                       when the site said, else after a backoff
        ├── http.RetriableUpstreamError         network trouble, timeout, 429, 5xx
        ├── calendars.errors.RetriableCalendarError
        └── students.codeforces_api.CodeforcesRetriableError
            ├── CallLimitError                  "call limit exceeded"
            └── CodeforcesUnavailableError      Codeforces is down or overloaded

`http.UpstreamError` is the common base of the two http errors (with the site's status
and body); domain errors that are not about a remote site (a bad form, a missing row, a
busy lock) subclass `CpsyncError` directly, next to the code that raises them.
"""

from __future__ import annotations


class CpsyncError(Exception):
    status_code: int = 500

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class PermanentError(CpsyncError):
    """A remote site refused or could not be understood; the same call would fail again."""

    status_code = 502


class RetriableError(CpsyncError):
    """A remote site is unavailable for now. `retry_after` is the delay in seconds the
    site asked for, or None when it did not say (the caller picks a backoff)."""

    status_code = 503

    def __init__(
        self, message: str, *, retry_after: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after
