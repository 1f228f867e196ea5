"""A faithful local fake of the Google Calendar API v3 and Google's OAuth token endpoint.

A real HTTP server on 127.0.0.1 (ThreadingHTTPServer in a thread). What it enforces,
as Google does:

- request bodies validated recursively against the `Event` / `Calendar` schemas of
  Google's own discovery document (shipped inside google-api-python-client): unknown
  property names and wrong types are 400s;
- client-chosen event ids: base32hex alphabet (a-v, 0-9), 5..1024 characters;
- 409 `duplicate` for a reused id, including the id of a deleted event;
- 404 for unknown events, 410 `deleted` for deleting a deleted one;
- multipart/mixed batches (at most 1000 parts), answered as multipart/mixed with
  `Content-ID: <response-...>`, parts in shuffled order (Google does not promise order);
- events.list with paging, `syncToken` incremental lists (deleted events come back bare
  with `status: cancelled`), 410 `fullSyncRequired` for an expired token, 400 for the
  parameters Google forbids next to a sync token;
- bearer tokens issued by the token endpoint (form-encoded refresh_token grant), 401
  for anything else; `invalid_grant` for revoked refresh tokens.

Tests inject faults (403 rateLimitExceeded, 429, 500, ...) per call and read counters.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import json
import random
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import googleapiclient

DISCOVERY_PATH = (
    Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "calendar.v3.json"
)
DISCOVERY: dict[str, Any] = json.loads(DISCOVERY_PATH.read_text())
SCHEMAS: dict[str, Any] = DISCOVERY["schemas"]
EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
FORBIDDEN_WITH_SYNC_TOKEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
COLOR_IDS = {str(n) for n in range(1, 12)}
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           409: "Conflict", 410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error",
           200: "OK", 204: "No Content", 503: "Service Unavailable"}  # fmt: skip


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, domain: str = "global") -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain
        self.retry_after: str | None = None

    def body(self) -> dict[str, Any]:
        errors = [{"domain": self.domain, "reason": self.reason, "message": self.message}]
        return {"error": {"errors": errors, "code": self.status, "message": self.message}}


# -- schema validation ---------------------------------------------------------------


def validate(value: Any, schema: dict[str, Any], where: str) -> None:
    """Check `value` against a discovery-document schema, recursively."""
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"]]
    kind = schema.get("type")
    if value is None:
        return  # JSON null clears a field in a patch
    checker = _CHECKERS.get(kind)
    if checker is None:
        raise AssertionError(f"schema type {kind!r} at {where} not handled by the fake")
    checker(value, schema, where)


def _invalid(where: str, what: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value for {where}: {what}")


def _check_object(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, dict):
        raise _invalid(where, "expected an object")
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], f"{where}.{name}")
        elif extra is not None:
            validate(item, extra, f"{where}.{name}")
        else:
            raise ApiError(400, "invalid", f"Unknown field name: {where}.{name}")


def _check_array(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, list):
        raise _invalid(where, "expected an array")
    for index, item in enumerate(value):
        validate(item, schema["items"], f"{where}[{index}]")


def _check_string(value: Any, schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, str):
        raise _invalid(where, "expected a string")
    fmt = schema.get("format")
    try:
        if fmt == "date-time":
            datetime.fromisoformat(value)
        elif fmt == "date":
            date.fromisoformat(value)
    except ValueError as exc:
        raise _invalid(where, f"bad {fmt} {value!r}") from exc


def _check_integer(value: Any, schema: dict[str, Any], where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(where, "expected an integer")
    if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
        raise _invalid(where, "out of int32 range")


def _check_boolean(value: Any, _schema: dict[str, Any], where: str) -> None:
    if not isinstance(value, bool):
        raise _invalid(where, "expected a boolean")


def _check_any(_value: Any, _schema: dict[str, Any], _where: str) -> None:
    pass


_CHECKERS: dict[Any, Callable[[Any, dict[str, Any], str], None]] = {
    "object": _check_object,
    "array": _check_array,
    "string": _check_string,
    "integer": _check_integer,
    "boolean": _check_boolean,
    "any": _check_any,
    None: _check_any,
}


def check_event_rules(event: dict[str, Any]) -> None:
    """The semantic checks Google makes beyond the schema."""
    for edge in ("start", "end"):
        when = event.get(edge)
        if not when or not (when.get("dateTime") or when.get("date")):
            raise ApiError(400, "required", f"Missing {edge} time.")
        value = when.get("dateTime")
        if value and datetime.fromisoformat(value).tzinfo is None and not when.get("timeZone"):
            raise ApiError(400, "invalid", f"Missing time zone definition for {edge} time.")
    if _instant(event["end"]) < _instant(event["start"]):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", "calendar")
    reminders = event.get("reminders") or {}
    overrides = reminders.get("overrides") or []
    if len(overrides) > 5:
        raise ApiError(400, "cannotUseMoreThan5Overrides", "Too many reminder overrides.")
    if reminders.get("useDefault") and overrides:
        raise ApiError(400, "cannotUseDefaultRemindersAndSpecifyOverride", "Bad reminders.")
    for reminder in overrides:
        if reminder.get("method") not in ("email", "popup") or not (
            0 <= reminder.get("minutes", -1) <= 40320
        ):
            raise ApiError(400, "invalid", f"Invalid reminder {reminder}.")
    if "colorId" in event and event["colorId"] is not None and event["colorId"] not in COLOR_IDS:
        raise ApiError(400, "invalid", "Invalid color id.")


def _instant(when: dict[str, Any]) -> datetime:
    if when.get("dateTime"):
        moment = datetime.fromisoformat(when["dateTime"])
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.fromisoformat(when["date"]).replace(tzinfo=UTC)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Patch semantics: objects merge field by field, arrays and scalars replace, null clears."""
    merged = dict(target)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        elif isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = merge_patch(merged[name], value)
        else:
            merged[name] = value
    return merged


# -- the fake ------------------------------------------------------------------------


@dataclass
class Fault:
    """Answer matching API calls with an error instead of serving them."""

    status: int
    reason: str = ""
    op: str | None = None  # insert, patch, get, delete, list, calendars.insert; None = any
    event_id: str | None = None
    times: int = 1
    retry_after: str | None = None

    def matches(self, op: str, event_id: str | None) -> bool:
        return (
            self.times > 0
            and (self.op is None or self.op == op)
            and (self.event_id is None or self.event_id == event_id)
        )


@dataclass
class Call:
    op: str
    event_id: str | None
    status: int
    in_batch: bool


@dataclass
class FakeGoogle:
    client_id: str = "client-id"
    client_secret: str = "client-secret"
    refresh_tokens: set[str] = field(default_factory=lambda: {"refresh-1"})
    access_tokens: set[str] = field(default_factory=set)
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)
    calendars: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {"primary": {}})
    faults: list[Fault] = field(default_factory=list)
    batch_faults: list[Fault] = field(default_factory=list)
    # Google-like per-batch quota: calls past this many in one batch get 403 rateLimitExceeded.
    calls_per_batch_limit: int | None = None
    calls: list[Call] = field(default_factory=list)
    http_requests: Counter[str] = field(default_factory=Counter)
    seq: int = 0
    token_epoch: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    shuffle: random.Random = field(default_factory=lambda: random.Random(4))

    # -- what tests look at / do as "the user" ----------------------------------------

    def live_events(self, calendar_id: str = "primary") -> dict[str, dict[str, Any]]:
        with self.lock:
            events = self.calendars[calendar_id].items()
            return {i: dict(e) for i, e in events if e["status"] != "cancelled"}

    def writes(self) -> int:
        return sum(1 for c in self.calls if c.op in ("insert", "patch", "update", "delete"))

    def reads(self) -> int:
        return sum(1 for c in self.calls if c.op in ("list", "get"))

    def reset_counters(self) -> None:
        with self.lock:
            self.calls.clear()
            self.http_requests.clear()

    def user_edit(self, event_id: str, calendar_id: str = "primary", **changes: Any) -> None:
        with self.lock:
            event = self.calendars[calendar_id][event_id]
            event.update(changes)
            self._touch(event)

    def user_delete(self, event_id: str, calendar_id: str = "primary") -> None:
        with self.lock:
            event = self.calendars[calendar_id][event_id]
            event["status"] = "cancelled"
            self._touch(event)

    def user_add(self, event: dict[str, Any], calendar_id: str = "primary") -> str:
        """An event the user made in the Google UI (Google picks the id)."""
        with self.lock:
            event_id = secrets.token_hex(13)
            stored = {**event, "id": event_id, "status": "confirmed"}
            self._stamp_new(stored)
            self.calendars[calendar_id][event_id] = stored
            return event_id

    def revoke(self, refresh_token: str = "refresh-1") -> None:
        with self.lock:
            self.refresh_tokens.discard(refresh_token)
            self.access_tokens.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def expire_sync_tokens(self) -> None:
        with self.lock:
            self.token_epoch += 1

    def inject(self, status: int, reason: str = "", **match: Any) -> Fault:
        fault = Fault(status, reason, **match)
        with self.lock:
            self.faults.append(fault)
        return fault

    # -- HTTP entry points -------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        path = urlsplit(target).path
        with self.lock:
            self.http_requests[path if path in ("/token", "/batch/calendar/v3") else "api"] += 1
        if method == "POST" and path == "/token":
            return self._token(headers, body)
        if method == "POST" and path == "/batch/calendar/v3":
            return self._batch(headers, body)
        status, payload, extra = self.api(method, target, headers, body, in_batch=False)
        return status, {"Content-Type": "application/json; charset=UTF-8", **extra}, payload

    def api(
        self, method: str, target: str, headers: dict[str, str], body: bytes, *, in_batch: bool
    ) -> tuple[int, bytes, dict[str, str]]:
        """One API call (direct or inside a batch): status, JSON body, extra headers."""
        op, event_id = "unknown", None
        try:
            self._authenticate(headers)
            op, calendar_id, event_id = self._route(method, target)
            if op == "insert":
                event_id = _json(body).get("id")  # client-chosen ids travel in the body
            self._maybe_fail(op, event_id)
            result = self._serve(op, calendar_id, event_id, target, body)
            status, payload = (204, b"") if result is None else (200, json.dumps(result).encode())
            extra: dict[str, str] = {}
        except ApiError as exc:
            status, payload = exc.status, json.dumps(exc.body()).encode()
            extra = {"Retry-After": exc.retry_after} if exc.retry_after else {}
        with self.lock:
            self.calls.append(Call(op, event_id, status, in_batch))
        return status, payload, extra

    # -- OAuth -------------------------------------------------------------------------

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        def answer(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
            return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()

        if "application/x-www-form-urlencoded" not in headers.get("content-type", ""):
            return answer(400, {"error": "invalid_request"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if _client_of(form, headers) != (self.client_id, self.client_secret):
            return answer(401, {"error": "invalid_client"})
        if form.get("grant_type") == "authorization_code":
            status, payload = self._exchange_code(form)
            return answer(status, payload)
        if form.get("grant_type") != "refresh_token":
            return answer(400, {"error": "unsupported_grant_type"})
        with self.lock:
            if form.get("refresh_token") not in self.refresh_tokens:
                description = "Token has been expired or revoked."
                return answer(400, {"error": "invalid_grant", "error_description": description})
            access = f"ya29.{secrets.token_urlsafe(24)}"
            self.access_tokens.add(access)
        scope = "https://www.googleapis.com/auth/calendar.app.created"
        return answer(
            200,
            {"access_token": access, "expires_in": 3599, "token_type": "Bearer", "scope": scope},
        )

    def grant_code(self, code_challenge: str, redirect_uri: str) -> str:
        """The user consented at Google: a single-use code for this PKCE challenge."""
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = (code_challenge, redirect_uri)
        return code

    def _exchange_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)  # single use
        if grant is None:
            return 400, {"error": "invalid_grant", "error_description": "Bad code."}
        challenge, redirect_uri = grant
        verifier = form.get("code_verifier", "").encode()
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if computed.decode() != challenge or form.get("redirect_uri") != redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "PKCE or redirect."}
        refresh, access = f"refresh-{secrets.token_hex(4)}", f"ya29.{secrets.token_urlsafe(24)}"
        with self.lock:
            self.refresh_tokens.add(refresh)
            self.access_tokens.add(access)
        return 200, {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/calendar.app.created",
        }

    def _authenticate(self, headers: dict[str, str]) -> None:
        authorization = headers.get("authorization", "")
        token = authorization.removeprefix("Bearer ").strip()
        with self.lock:
            if not authorization.startswith("Bearer ") or token not in self.access_tokens:
                raise ApiError(401, "authError", "Invalid Credentials")

    # -- routing and serving -----------------------------------------------------------

    def _route(self, method: str, target: str) -> tuple[str, str, str | None]:
        path = urlsplit(target).path
        if method == "POST" and path == "/calendar/v3/calendars":
            return "calendars.insert", "", None
        match = re.fullmatch(r"/calendar/v3/calendars/([^/]+)/events(?:/([^/]+))?", path)
        if not match:
            raise ApiError(404, "notFound", f"No route for {method} {path}")
        calendar_id, event_id = unquote(match.group(1)), match.group(2)
        ops = {
            ("GET", False): "list",
            ("POST", False): "insert",
            ("GET", True): "get",
            ("PATCH", True): "patch",
            ("PUT", True): "update",
            ("DELETE", True): "delete",
        }
        op = ops.get((method, event_id is not None))
        if op is None:
            raise ApiError(405, "methodNotAllowed", f"{method} not allowed on {path}")
        if calendar_id not in self.calendars:
            raise ApiError(404, "notFound", "Not Found")
        return op, calendar_id, event_id

    def _maybe_fail(self, op: str, event_id: str | None) -> None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(op, event_id):
                    fault.times -= 1
                    error = ApiError(fault.status, fault.reason or "backendError", "injected")
                    if fault.status == 403:
                        error.domain = "usageLimits"
                    error.retry_after = fault.retry_after
                    raise error

    def _serve(
        self, op: str, calendar_id: str, event_id: str | None, target: str, body: bytes
    ) -> dict[str, Any] | None:
        with self.lock:
            if op == "calendars.insert":
                return self._insert_calendar(_json(body))
            events = self.calendars[calendar_id]
            if op == "list":
                return self._list(calendar_id, target)
            if op == "insert":
                return self._insert(events, _json(body))
            assert event_id is not None
            if op == "get":
                return _public(self._existing(events, event_id))
            if op == "patch":
                return self._patch(events, event_id, _json(body))
            if op == "delete":
                return self._delete(events, event_id)
            raise ApiError(400, "unsupported", f"{op} is not served by the fake")

    def _insert_calendar(self, body: dict[str, Any]) -> dict[str, Any]:
        validate(body, {"$ref": "Calendar"}, "calendar")
        if not body.get("summary"):
            raise ApiError(400, "required", "Missing title.")
        calendar_id = f"{secrets.token_hex(16)}@group.calendar.google.com"
        self.calendars[calendar_id] = {}
        return {"kind": "calendar#calendar", "id": calendar_id, "etag": '"1"', **body}

    def _insert(self, events: dict[str, dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        validate(body, {"$ref": "Event"}, "resource")
        check_event_rules(body)
        event_id = body.get("id") or secrets.token_hex(13)
        if not EVENT_ID.fullmatch(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        if event_id in events:  # deleted (cancelled) ids stay taken
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        stored = {**body, "id": event_id, "status": body.get("status", "confirmed")}
        self._stamp_new(stored)
        events[event_id] = stored
        return _public(stored)

    def _patch(
        self, events: dict[str, dict[str, Any]], event_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        validate(body, {"$ref": "Event"}, "resource")
        existing = self._existing(events, event_id)
        if body.get("id", event_id) != event_id:
            raise ApiError(400, "invalid", "The event id cannot be changed.")
        merged = merge_patch(existing, body)
        check_event_rules(merged)
        existing.clear()
        existing.update(merged)
        self._touch(existing)
        return _public(existing)

    def _delete(self, events: dict[str, dict[str, Any]], event_id: str) -> None:
        event = self._existing(events, event_id)
        if event["status"] == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        event["status"] = "cancelled"
        self._touch(event)

    def _existing(self, events: dict[str, dict[str, Any]], event_id: str) -> dict[str, Any]:
        if event_id not in events:
            raise ApiError(404, "notFound", "Not Found")
        return events[event_id]

    def _list(self, calendar_id: str, target: str) -> dict[str, Any]:
        query = parse_qs(urlsplit(target).query)
        params = {name: values[-1] for name, values in query.items()}
        page_size = min(int(params.get("maxResults", "250")), 2500)
        if "pageToken" in params:
            since, snapshot, offset, filters = _decode_page_token(params["pageToken"])
        else:
            since, snapshot, offset = self._since(calendar_id, params), self.seq, 0
            filters = query.get("privateExtendedProperty", [])
        show_deleted = since is not None or params.get("showDeleted") == "true"
        items = [
            e
            for e in sorted(self.calendars[calendar_id].values(), key=lambda e: e["_seq"])
            if e["_seq"] <= snapshot
            and (since is None or e["_seq"] > since)
            and (show_deleted or e["status"] != "cancelled")
            and _has_private(e, filters)
        ]
        page = items[offset : offset + page_size]
        result: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": calendar_id,
            "timeZone": "UTC",
            "items": [_listed(e, incremental=since is not None) for e in page],
        }
        if offset + page_size < len(items):
            result["nextPageToken"] = _page_token(since, snapshot, offset + page_size, filters)
        else:
            result["nextSyncToken"] = self._sync_token(calendar_id, snapshot)
        return result

    def _since(self, calendar_id: str, params: dict[str, str]) -> int | None:
        token = params.get("syncToken")
        if token is None:
            return None
        forbidden = [name for name in FORBIDDEN_WITH_SYNC_TOKEN if name in params]
        if forbidden or params.get("showDeleted") == "false":
            raise ApiError(400, "invalid", f"{forbidden} cannot be used with syncToken")
        try:
            token_calendar, epoch, seq = base64.urlsafe_b64decode(token).decode().split("|")
        except ValueError as exc:
            raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid.") from exc
        if token_calendar != calendar_id or int(epoch) != self.token_epoch:
            raise ApiError(
                410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
            )
        return int(seq)

    def _sync_token(self, calendar_id: str, seq: int) -> str:
        raw = f"{calendar_id}|{self.token_epoch}|{seq}"
        return base64.urlsafe_b64encode(raw.encode()).decode()

    def _stamp_new(self, event: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        event.update(
            kind="calendar#event",
            created=now,
            iCalUID=f"{event['id']}@google.com",
            htmlLink=f"https://www.google.com/calendar/event?eid={event['id']}",
            sequence=0,
        )
        self._touch(event)

    def _touch(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["_seq"] = self.seq
        event["etag"] = f'"{self.seq}"'
        event["updated"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    # -- batch -------------------------------------------------------------------------

    def _batch(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        content_type = headers.get("content-type", "")
        error = self._batch_refusal(content_type)
        if error is not None:
            return error
        message = email.message_from_bytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.compat32
        )
        parts = message.get_payload()
        if not isinstance(parts, list) or not parts or len(parts) > 1000:
            return _plain(400, ApiError(400, "invalid", "A batch holds 1 to 1000 calls.").body())
        answers = []
        for index, part in enumerate(parts):
            answers.append(self._batch_part(part, headers, index))
        self.shuffle.shuffle(answers)
        boundary = f"batch_{secrets.token_urlsafe(12)}"
        out = b"".join(f"--{boundary}\r\n".encode() + answer for answer in answers)
        out += f"--{boundary}--\r\n".encode()
        return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, out

    def _batch_refusal(self, content_type: str) -> tuple[int, dict[str, str], bytes] | None:
        if not content_type.startswith("multipart/mixed"):
            return _plain(400, ApiError(400, "invalid", "Batch must be multipart/mixed").body())
        with self.lock:
            for fault in self.batch_faults:
                if fault.times > 0:
                    fault.times -= 1
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    status, headers, payload = _plain(
                        fault.status, ApiError(fault.status, fault.reason, "injected").body()
                    )
                    return status, {**headers, **extra}, payload
        return None

    def _batch_part(self, part: Any, outer: dict[str, str], index: int) -> bytes:
        # Google answers such parts with 400; failing loudly tells the sink's author more.
        assert part.get_content_type() == "application/http", "part is not application/http"
        content_id = (part.get("Content-ID") or "").strip()
        assert content_id, "batch part without Content-ID"
        raw = part.get_payload(decode=False)
        raw = raw.encode() if isinstance(raw, str) else raw
        head, _, inner_body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
        request_line, *header_lines = head.decode().splitlines()
        method, target, _version = request_line.split(" ")
        inner_headers = {"authorization": outer.get("authorization", "")}
        for line in header_lines:
            name, _, value = line.partition(":")
            inner_headers[name.strip().lower()] = value.strip()
        if index >= (self.calls_per_batch_limit or 10**9):
            error = ApiError(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits")
            status, payload, extra = 403, json.dumps(error.body()).encode(), {}
            with self.lock:
                self.calls.append(Call("throttled", None, 403, True))
        else:
            status, payload, extra = self.api(
                method, target, inner_headers, inner_body.strip(), in_batch=True
            )
        inner = f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\n"
        inner += "Content-Type: application/json; charset=UTF-8\r\n"
        inner += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        inner_bytes = inner.encode() + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload
        cid = content_id.strip("<>")
        return (
            f"Content-Type: application/http\r\nContent-ID: <response-{cid}>\r\n\r\n".encode()
            + inner_bytes
            + b"\r\n"
        )


def _plain(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(payload).encode()


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, "parseError", "Parse Error") from exc
    if not isinstance(value, dict):
        raise ApiError(400, "parseError", "Parse Error")
    return value


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("_")}


def _listed(event: dict[str, Any], *, incremental: bool) -> dict[str, Any]:
    """Deleted events come back bare in incremental lists: only id and status."""
    return _bare(event) if incremental and event["status"] == "cancelled" else _public(event)


def _bare(event: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "calendar#event", "etag": event["etag"], "id": event["id"],
            "status": "cancelled"}  # fmt: skip


def _has_private(event: dict[str, Any], filters: list[str]) -> bool:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    for constraint in filters:
        name, _, value = constraint.partition("=")
        if private.get(name) != value:
            return False
    return True


def _page_token(since: int | None, snapshot: int, offset: int, filters: list[str]) -> str:
    raw = json.dumps([since, snapshot, offset, filters])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_page_token(token: str) -> tuple[int | None, int, int, list[str]]:
    since, snapshot, offset, filters = json.loads(base64.urlsafe_b64decode(token))
    return since, snapshot, offset, filters


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGoogle
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, reply_headers, payload = self.fake.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in reply_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer


class FakeGoogleServer:
    def __init__(self, fake: FakeGoogle | None = None) -> None:
        self.fake = fake or FakeGoogle()
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_google_server(fake: FakeGoogle | None = None) -> Iterator[FakeGoogleServer]:
    server = FakeGoogleServer(fake)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client_of(form: dict[str, str], headers: dict[str, str]) -> tuple[str | None, str | None]:
    """Client credentials from the form, or from HTTP Basic as Google also accepts."""
    authorization = headers.get("authorization", "")
    if authorization.startswith("Basic "):
        user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        return unquote(user), unquote(password)
    return form.get("client_id"), form.get("client_secret")
