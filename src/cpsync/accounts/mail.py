"""The emails the accounts domain sends, and their delivery after the response.

Emails go out after the request's commit and after the answer has left, so an address
that gets mail and one that does not answer alike and equally fast.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from cpsync.notify.email import Email, EmailDeliveryError, Mailer, render_email

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AccountMail:
    """Builds the account emails with links to this deployment's public address."""

    public_url: str

    def link(self, path: str, **query: str) -> str:
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.public_url.rstrip('/')}{path}{suffix}"

    def verify(self, to: str, token: str) -> Email:
        url = self.link("/account/verify", token=token)
        return render_email("account_verify", to, "Confirm your email address", {"url": url})

    def signup_attempt(self, to: str) -> Email:
        context = {"signin_url": self.link("/signin"), "reset_url": self.link("/signin/forgot")}
        return render_email(
            "account_signup_attempt", to, "Someone tried to sign up with your address", context
        )

    def reset(self, to: str, token: str, valid_minutes: int) -> Email:
        context = {"url": self.link("/signin/reset", token=token), "valid_minutes": valid_minutes}
        return render_email("account_reset", to, "Reset your cpsync password", context)

    def invite(self, to: str, token: str, role: str, valid_days: int) -> Email:
        context = {"url": self.invite_url(token), "role": role, "valid_days": valid_days}
        return render_email("account_invite", to, "You are invited to cpsync", context)

    def invite_url(self, token: str) -> str:
        return self.link("/signup", invite=token)


async def deliver(mailer: Mailer, emails: Sequence[Email]) -> None:
    """Send each email; a failure is logged and the next one still goes out."""
    for email in emails:
        try:
            await mailer.send(email)
        except EmailDeliveryError as exc:
            log.warning("accounts.email.failed subject=%r error=%s", email.subject, exc)
