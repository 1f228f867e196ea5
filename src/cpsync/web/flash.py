"""One-time messages after a redirect ("Sync requested."): shown on the next page, once.

The message rides in a short-lived signed cookie rather than the address, so a reload
or a bookmark does not repeat it and nobody can put words in the app's mouth through a
crafted link.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeSerializer

FLASH_COOKIE = "cpsync_flash"
FLASH_MAX_AGE_SECONDS = 120


class FlashMessages:
    def __init__(self, secret_key: bytes, *, secure: bool) -> None:
        self._serializer = URLSafeSerializer(secret_key, salt="cpsync.flash")
        self._secure = secure

    def redirect(self, url: str, message: str) -> RedirectResponse:
        """A 303 to `url` that shows `message` there once."""
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            FLASH_COOKIE,
            self._serializer.dumps(message),
            max_age=FLASH_MAX_AGE_SECONDS,
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )
        return response

    def pending(self, request: Request) -> str | None:
        """The message a redirect left for this page, if any (and genuine)."""
        cookie = request.cookies.get(FLASH_COOKIE)
        if cookie is None:
            return None
        try:
            message = self._serializer.loads(cookie)
        except BadSignature:
            return None
        return message if isinstance(message, str) else None

    def clear(self, request: Request, response: Response) -> None:
        """Shown once: the page that shows the message removes it."""
        if FLASH_COOKIE in request.cookies:
            response.delete_cookie(FLASH_COOKIE, httponly=True, samesite="lax", secure=self._secure)


def flash_redirect(request: Request, url: str, message: str) -> RedirectResponse:
    flash: FlashMessages = request.app.state.cpsync.flash
    return flash.redirect(url, message)
