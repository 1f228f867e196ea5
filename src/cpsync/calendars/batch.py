"""Google's multipart/mixed batch format (pure).

One outer `POST /batch/calendar/v3` carries inner HTTP requests, each in a part with
`Content-Type: application/http` and a `Content-ID`. The answer is multipart/mixed too;
each part's `Content-ID` is `response-` plus the request's id, and answers may come in
any order, so they are matched by id, never by position.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)?\s+(\d{3})")
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class InnerRequest:
    content_id: str
    method: str
    path: str  # absolute path plus query, e.g. /calendar/v3/calendars/primary/events
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class InnerResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


class BatchFormatError(ValueError):
    pass


def encode_batch(requests: Sequence[InnerRequest]) -> tuple[str, bytes]:
    """The outer request's Content-Type and body."""
    boundary = f"batch_{secrets.token_hex(12)}"
    parts = [_encode_part(boundary, request) for request in requests]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", body


def _encode_part(boundary: str, request: InnerRequest) -> bytes:
    head = (
        f"--{boundary}\r\n"
        "Content-Type: application/http\r\n"
        f"Content-ID: <{request.content_id}>\r\n\r\n"
        f"{request.method} {request.path} HTTP/1.1\r\n"
    )
    if request.body is None:
        return (head + "\r\n").encode()
    payload = json.dumps(request.body, separators=(",", ":")).encode()
    head += "Content-Type: application/json; charset=UTF-8\r\n"
    head += f"Content-Length: {len(payload)}\r\n\r\n"
    return head.encode() + payload + b"\r\n"


def decode_batch(content_type: str, body: bytes) -> dict[str, InnerResponse]:
    """Inner responses by request Content-ID (the `response-` prefix removed)."""
    match = _BOUNDARY.search(content_type)
    if not match:
        raise BatchFormatError(f"no boundary in {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    answers: dict[str, InnerResponse] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        content_id, response = _decode_part(chunk)
        answers[content_id] = response
    return answers


def _decode_part(chunk: bytes) -> tuple[str, InnerResponse]:
    part_head, _, inner = _split_head(chunk.lstrip(b"\r\n"))
    content_id = _headers(part_head).get("content-id", "").strip("<> ")
    content_id = content_id.removeprefix("response-")
    inner_head, _, inner_body = _split_head(inner)
    status_line, _, header_block = inner_head.partition(b"\n")
    status = _STATUS_LINE.match(status_line.strip())
    if not content_id or not status:
        raise BatchFormatError(f"malformed batch part: {chunk[:120]!r}")
    return content_id, InnerResponse(
        int(status.group(1)), _headers(header_block), inner_body.rstrip(b"\r\n")
    )


def _split_head(chunk: bytes) -> tuple[bytes, bytes, bytes]:
    parts = _BLANK_LINE.split(chunk, maxsplit=1)
    if len(parts) == 1:
        return parts[0], b"", b""
    return parts[0], b"\r\n\r\n", parts[1]


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers
