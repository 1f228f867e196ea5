"""One place that turns errors into answers: HTML pages for browsers, JSON for the API."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from cpsync.errors import CpsyncError
from cpsync.web.templating import render
from cpsync.web.validation import messages_by_field

log = logging.getLogger(__name__)
JSON_PREFIXES = ("/api/", "/feeds/", "/healthz", "/readyz", "/openapi.json", "/contests/")
TITLES = {
    400: "Bad request",
    401: "Sign in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Unavailable",
}


def wants_json(request: Request) -> bool:
    if request.url.path.startswith(JSON_PREFIXES):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(
    request: Request, status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status_code, headers=headers)
    context = {
        "status_code": status_code,
        "title": TITLES.get(status_code, "Error"),
        "message": message,
    }
    response = render(request, "error.html", context, status_code=status_code)
    if headers:
        response.headers.update(headers)
    return response


async def handle_cpsync_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CpsyncError)
    # 401 is "sign in first": a page asked for by GET sends the visitor to sign in and back.
    if exc.status_code == 401 and not wants_json(request) and request.method == "GET":
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/signin?next={target}", status_code=303)
    if exc.status_code >= 500:
        log.error("web.error status=%s message=%s", exc.status_code, exc.message)
    return error_response(request, exc.status_code, exc.message)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and message == "Not Found":
        message = "There is nothing at this address."
    return error_response(request, exc.status_code, message, dict(exc.headers or {}))


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if wants_json(request):
        errors = [
            {
                "loc": list(error.get("loc", ())),
                "msg": error.get("msg", ""),
                "type": error.get("type", ""),
            }
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)
    problems = " ".join(messages_by_field(exc.errors()).values())
    return error_response(request, 422, f"Please check what you sent. {problems}".strip())


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CpsyncError, handle_cpsync_error)
    app.add_exception_handler(HTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
