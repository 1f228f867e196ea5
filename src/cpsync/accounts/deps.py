"""The accounts domain's own FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from cpsync.accounts.credentials import CredentialService, MailPolicy
from cpsync.accounts.mail import AccountMail
from cpsync.accounts.models import SignupMode
from cpsync.notify.email import Mailer, mailer_from_url
from cpsync.web.deps import AccountsDep, ContextDep, SessionDep


def get_credentials(
    context: ContextDep, session: SessionDep, accounts: AccountsDep
) -> CredentialService:
    settings = context.settings
    policy = MailPolicy(AccountMail(settings.public_url), enabled=bool(settings.smtp_url))
    return CredentialService(
        session, accounts, context.clock, policy, SignupMode(settings.signup_mode)
    )


def get_mailer(context: ContextDep) -> Mailer:
    return mailer_from_url(context.settings.smtp_url)


CredentialsDep = Annotated[CredentialService, Depends(get_credentials)]
MailerDep = Annotated[Mailer, Depends(get_mailer)]
