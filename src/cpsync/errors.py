"""The root of cpsync's error tree.

    CpsyncError                       anything cpsync raises on purpose
    ├── http.UpstreamError            talking to a remote site failed
    │   ├── http.RetriableUpstreamError   429, 5xx, network trouble; carries a delay hint
    │   └── http.PermanentUpstreamError   other 4xx, oversized body; retrying will not help
    └── platforms.base.ParseError     an upstream answer we could not understand

Each carries a human message and the HTTP status a web handler should answer with.
"""

from __future__ import annotations


class CpsyncError(Exception):
    status_code: int = 500

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
