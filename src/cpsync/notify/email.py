"""Email over SMTP (`CPSYNC_SMTP_URL`), HTML and text rendered from templates.

URL forms: `smtp://host:port` (plain, STARTTLS when the server offers it),
`smtp+starttls://…` (STARTTLS required), `smtps://…` (TLS from the start); user and
password in the URL's userinfo; `?from=address` sets the sender. Delivery errors come
back as `EmailDeliveryError` so callers can log the attempt and retry later.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cpsync.errors import CpsyncError

TEMPLATES_DIR = Path(__file__).with_name("templates")
DEFAULT_SENDER = "cpsync <no-reply@localhost>"


class EmailDeliveryError(CpsyncError):
    status_code = 502


class EmailConfigError(CpsyncError):
    pass


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    html: str


class Mailer(Protocol):
    async def send(self, email: Email) -> None:
        """Deliver or raise EmailDeliveryError."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    start_tls: bool | None = None  # None: when the server offers it
    sender: str = DEFAULT_SENDER
    timeout_seconds: float = 20.0

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        schemes = {"smtp": (False, None), "smtp+starttls": (False, True), "smtps": (True, False)}
        if parts.scheme not in schemes or not parts.hostname:
            raise EmailConfigError("CPSYNC_SMTP_URL must look like smtp://host:port")
        use_tls, start_tls = schemes[parts.scheme]
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            start_tls=start_tls,
            sender=query.get("from", [DEFAULT_SENDER])[0],
        )


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, email: Email) -> None:
        config = self._config
        try:
            await aiosmtplib.send(
                to_message(email, config.sender),
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.use_tls,
                start_tls=config.start_tls,
                timeout=config.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise EmailDeliveryError(f"email to {email.to} failed: {exc}") from exc


class DisabledMailer:
    """No SMTP configured: every attempt fails (and is logged), none is counted as sent."""

    async def send(self, email: Email) -> None:
        raise EmailDeliveryError("no SMTP server configured (CPSYNC_SMTP_URL)")


def mailer_from_url(url: str) -> Mailer:
    return SmtpMailer(SmtpConfig.from_url(url)) if url else DisabledMailer()


def to_message(email: Email, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


_environment = Environment(
    loader=FileSystemLoader(str(TEMPLATES_DIR)),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    keep_trailing_newline=True,
)


def render_email(template: str, to: str, subject: str, context: dict[str, Any]) -> Email:
    """`template` names a pair: `<template>.txt` and `<template>.html`."""
    text = _environment.get_template(f"{template}.txt").render(context)
    html = _environment.get_template(f"{template}.html").render(context)
    return Email(to=to, subject=subject, text=text, html=html)
