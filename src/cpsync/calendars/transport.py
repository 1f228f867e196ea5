"""What the calendar sinks need from the outbound client.

Byte bodies (multipart batches, iCalendar, WebDAV XML), methods such as PROPFIND and
REPORT, and every answer back as a value: a 409, 412 or 410 is information here, not an
error. The sinks run their own retry loops, because a Google batch must retry only the
inner calls that failed. `cpsync.http.HttpClient.send` is the implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from cpsync.http import HttpResponse


class RawHttp(Protocol):
    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], content: bytes = b""
    ) -> HttpResponse:
        """One attempt; any status comes back. Network trouble raises RetriableUpstreamError."""
        ...
