"""Jinja2 templates and the one `render` every page goes through."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")


def iso_utc(moment: datetime | None) -> str:
    """`2024-10-10T13:00:00Z`, for `<time datetime>`."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def email_breaks(address: str) -> Markup:
    """The address escaped, with line-break chances before `@` and before each dot:
    a narrow column wraps `ada.lovelace` / `@example` / `.org`, not inside a word."""
    return Markup("<wbr>@").join(
        Markup("<wbr>.").join(escape(part) for part in side.split("."))
        for side in address.split("@")
    )


def create_templates(shared: Mapping[str, Any]) -> Jinja2Templates:
    """The templates, with `shared` names (from the domains, via the app) on every page."""
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    templates.env.globals.update(shared)
    templates.env.filters["iso"] = iso_utc
    templates.env.filters["email_breaks"] = email_breaks
    return templates


def render(
    request: Request, template_name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    app_context = request.app.state.cpsync
    visitor = getattr(request.state, "visitor", None)
    # Full pages show what a redirect left for them; htmx fragments leave it for the page.
    full_page = not request.headers.get("hx-request")
    pending = app_context.flash.pending(request) if full_page else None
    full: dict[str, Any] = {
        "request": request,
        "current_user": visitor.user if visitor is not None else None,
        "csrf_token": visitor.csrf_token if visitor is not None else "",
        "google_enabled": app_context.settings.google_enabled,
        "nav": None,
        **context,
    }
    if pending and not full.get("flash"):
        full["flash"] = pending
    response: HTMLResponse = app_context.templates.TemplateResponse(
        request, template_name, full, status_code=status_code
    )
    if full_page:
        app_context.flash.clear(request, response)
    return response
