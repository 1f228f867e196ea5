"""The contract every platform module fulfils.

A platform module exposes a module-level object satisfying `Platform`:

- `name`: the platform's identifier, its key in `registry.PLATFORMS`.
- `request(base_url)`: the HTTP request that fetches its contest list, built on the
  configured scheme and host with the platform's real path.
- `parse(payload, fetched_at)`: a pure function from the raw response body to the
  contests that have not ended at `fetched_at`. A malformed item is skipped and
  counted; a payload that cannot be understood at all raises `ParseError` naming the
  platform. Nothing else may escape.

Every contest is checked here, once, for every platform: its key must be made of URI
unreserved characters (RFC 3986 section 2.3) and its URL must be an absolute http(s) URL
of URI characters. Anything else (a CR/LF in a slug, a space, a `javascript:` link) makes
the item malformed, because keys and URLs end up in iCalendar lines, file names and
request paths, where one bad value used to break every feed. Names are display text: a
control character in one is replaced by a space rather than losing the contest.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from cpsync.errors import PermanentError

BROWSER_HEADERS: dict[str, str] = {
    "User-Agent": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0 Safari/537.36"
    ),
    "Accept-Language": "en-US,en;q=0.9",
}


class ParseError(PermanentError):
    """An upstream payload of `platform` that cannot be understood as a whole. Its message
    starts with the platform's name: "codechef: not JSON (...)"."""

    def __init__(self, reason: str, *, platform: str) -> None:
        super().__init__(f"{platform}: {reason}")
        self.platform = platform


# Every key the platforms have ever sent fits (numeric ids and slugs); the cap stays
# under the 255 characters the contests table holds.
_SAFE_KEY = re.compile(r"[A-Za-z0-9._~-]{1,200}")
# The characters RFC 3986 allows in a URI: no whitespace, control characters, quotes,
# angle brackets or non-ASCII.
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]+")
_WEB_SCHEMES = frozenset({"http", "https"})
# Control characters, and lone surrogates (which JSON can carry but UTF-8 cannot).
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cs"})

EnvelopeT = TypeVar("EnvelopeT", bound=BaseModel)


def load_envelope(payload: bytes, envelope: type[EnvelopeT], platform: str) -> EnvelopeT:
    """Decode a JSON object and validate its outer shape, or raise ParseError."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ParseError(f"not JSON ({exc})", platform=platform) from exc
    if not isinstance(document, dict):
        raise ParseError("unexpected top-level value", platform=platform)
    try:
        return envelope.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        reason = f"unexpected response shape ({location}: {first['msg']})"
        raise ParseError(reason, platform=platform) from exc


@dataclass(frozen=True, slots=True)
class ParsedContest:
    platform: str
    key: str
    name: str
    url: str
    start: datetime
    end: datetime
    duration_seconds: int

    def __post_init__(self) -> None:
        check_key(self.key)
        check_url(self.url)
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("contest times must be timezone-aware")
        if self.end < self.start:
            raise ValueError("a contest cannot end before it starts")


@dataclass(slots=True)
class ParseResult:
    """What one payload held: the contests not yet ended, and what was skipped."""

    contests: list[ParsedContest] = field(default_factory=list)
    items_seen: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PlatformRequest:
    method: Literal["GET", "POST"]
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None


class Platform(Protocol):
    @property
    def name(self) -> str: ...

    def request(self, base_url: str) -> PlatformRequest: ...

    def parse(self, payload: bytes, fetched_at: datetime) -> ParseResult: ...


def make_contest(
    platform: str,
    *,
    key: object,
    name: object,
    url: str,
    start: datetime,
    end: datetime,
    duration_seconds: int | None = None,
) -> ParsedContest:
    """Build a contest from loosely typed fields, normalising to UTC.

    Raises ValueError (which the shared item loop counts as a skip) when a mandatory
    field is empty, the key or URL is unsafe (see the module docstring) or the times make
    no sense. Control characters in the name become spaces.
    """
    key_text = str(key).strip() if key is not None else ""
    name_text = display_text(str(name)) if name is not None else ""
    if not key_text:
        raise ValueError("missing key")
    if not name_text:
        raise ValueError("missing name")
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    duration = (
        duration_seconds
        if duration_seconds is not None
        else int((end_utc - start_utc).total_seconds())
    )
    if duration < 0:
        raise ValueError("negative duration")
    return ParsedContest(platform, key_text, name_text, url, start_utc, end_utc, duration)


def check_key(key: str) -> None:
    """Raise ValueError unless `key` is a safe contest key (see the module docstring)."""
    if not _SAFE_KEY.fullmatch(key):
        raise ValueError(f"unsafe key {key[:60]!r}")


def check_url(url: str) -> None:
    """Raise ValueError unless `url` is an absolute http(s) URL of URI characters."""
    if not _URI_CHARACTERS.fullmatch(url):
        raise ValueError(f"unsafe url {url[:100]!r}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in _WEB_SCHEMES or not parts.hostname:
        raise ValueError(f"not an absolute http(s) url {url[:100]!r}")


def display_text(text: str) -> str:
    """`text` on one line: control characters become spaces, runs of spaces one."""
    if not text.isprintable():  # rare: spare the common name the per-character pass
        text = "".join(
            " " if unicodedata.category(char) in _UNPRINTABLE_CATEGORIES else char for char in text
        )
    return " ".join(text.split())


def collect(
    result: ParseResult,
    items: list[Any],
    build: Any,
    fetched_at: datetime,
) -> ParseResult:
    """Run `build(item)` over every item, keeping contests not ended at `fetched_at`.

    `build` returns a ParsedContest, or None for an item that is legitimately not a
    contest we list (e.g. already finished); any ValueError, KeyError, TypeError or
    pydantic ValidationError (or OverflowError/OSError from out-of-range timestamps)
    it raises marks that one item as skipped.
    """
    for index, item in enumerate(items):
        result.items_seen += 1
        # OSError too: datetime.fromtimestamp raises it (EOVERFLOW) for some huge timestamps.
        try:
            contest = build(item)
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError) as exc:
            result.skipped.append(f"item {index}: {_short(exc)}")
            continue
        if contest is not None and contest.end > fetched_at:
            result.contests.append(contest)
    return result


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
