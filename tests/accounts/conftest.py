"""The web app with email on: a real SMTP receiver (aiosmtpd) catches what it sends."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from email.message import Message
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from cpsync.app import create_app
from cpsync.db import Database
from cpsync.settings import Settings
from tests.recordings import MutableClock
from tests.smtp_receiver import Inbox, smtp_receiver
from tests.web.conftest import (
    WebClient,
    app,
    cheap_argon2,
    client,
    clock,
    make_client,
    web_settings,
)

__all__ = ["app", "cheap_argon2", "client", "clock", "web_settings"]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_receiver() as receiver:
        yield receiver


@pytest.fixture
def inbox(smtp: tuple[Inbox, int]) -> Inbox:
    return smtp[0]


@pytest.fixture
def mail_settings(web_settings: Settings, smtp: tuple[Inbox, int]) -> Settings:
    return web_settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{smtp[1]}"})


@pytest.fixture
async def mail_app(
    database: Database, mail_settings: Settings, clock: MutableClock
) -> AsyncIterator[FastAPI]:
    application = create_app(mail_settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def mail_client(mail_app: FastAPI) -> AsyncIterator[WebClient]:
    async with make_client(mail_app) as http:
        yield http


def text_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("the email has no text part")


def messages_to(inbox: Inbox, address: str) -> list[Message]:
    return [message for message in inbox.messages if message["To"] == address]


def link_in(message: Message, path: str) -> str:
    """The path and query of the link to `path` in an email (the app's public URL aside)."""
    match = re.search(r"https?://\S+" + re.escape(path) + r"\?\S+", text_of(message))
    assert match, f"no {path} link in: {text_of(message)}"
    parts = urlsplit(match.group(0))
    return f"{parts.path}?{parts.query}"
