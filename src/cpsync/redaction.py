"""Secrets kept out of log lines and out of stored addresses.

`redact(text)` masks, wherever they appear in a text:

- the credentials of a URL: `https://alice:pw@dav.example/` → `https://***@dav.example/`;
- the value of a query parameter whose name says it is a secret (`token`, `key`,
  `password`, `secret`, `code`, `state`, `invite`, `sig`, `auth` and names containing
  them, such as `access_token` or `api_key`): `?token=abc` → `?token=***`;
- the token of a personal feed address: `/feeds/<token>.ics` → `/feeds/***.ics`.

`install_log_redaction()` applies it to every log record the process creates, whichever
logger and handler it goes through; `split_userinfo` takes the credentials out of a URL
that is about to be stored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
# The userinfo runs to the last "@" of the authority (as `urlsplit` reads it), which
# ends at the first "/", "?", "#" or blank.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;][\w.-]*?(?:token|key|password|passwd|pwd|secret|code|state|invite|sig|auth)"
    r"[\w.-]*=)[^&#\s\"'<>]*",
    re.IGNORECASE,
)
_FEED_TOKEN = re.compile(
    r"(?P<prefix>/feeds/)[^/?#\s\"'<>]+?(?P<suffix>\.ics\b|(?=[/?#\s\"'<>]|$))"
)
_SAFE_TYPES = (int, float, bool, type(None))


def redact(text: str) -> str:
    text = _USERINFO.sub(rf"\g<scheme>{MASK}@", text)
    text = _SECRET_PARAMETER.sub(rf"\g<name>{MASK}", text)
    return _FEED_TOKEN.sub(rf"\g<prefix>{MASK}\g<suffix>", text)


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without credentials, its username, its password); None for a part absent.

    Percent-escapes in the credentials are decoded: `p%40ss` is the password `p@ss`.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    username, colon, password = userinfo.partition(":")
    clean = urlunsplit(parts._replace(netloc=host))
    return clean, unquote(username), unquote(password) if colon else None


def redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in a record's message, arguments and traceback, in place.

    Arguments keep their shape (formatters such as uvicorn's access formatter unpack
    them): an argument is replaced by its masked text only when masking changed it.
    """
    record.msg = _redacted_arg(record.msg)
    if isinstance(record.args, Mapping):
        record.args = {key: _redacted_arg(value) for key, value in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(_redacted_arg(value) for value in record.args)
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text when it is set, so the traceback is masked once here.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))


def _redacted_arg(value: Any) -> Any:
    if isinstance(value, _SAFE_TYPES):
        return value
    text = str(value)
    masked = redact(text)
    return value if masked == text else masked


def install_log_redaction() -> None:
    """Mask secrets in every log record this process creates, from now on.

    A record factory rather than a filter on some handler: uvicorn configures its own
    handlers (after the app is built) on loggers that do not propagate to the root, and
    tests attach theirs; a factory sees every record before any of them. Idempotent.
    """
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        try:
            redact_record(record)
        except Exception:  # an argument whose str() fails: keep the line, not the values
            record.args = ()
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
