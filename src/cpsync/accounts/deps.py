"""The accounts domain's own FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from cpsync.accounts.administration import Administration
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


CredentialsDep = Annotated[CredentialService, Depends(get_credentials)]


def get_administration(
    context: ContextDep, session: SessionDep, accounts: AccountsDep, credentials: CredentialsDep
) -> Administration:
    mail = AccountMail(context.settings.public_url)
    return Administration(session, accounts, credentials, context.clock, mail)


def get_mailer(context: ContextDep) -> Mailer:
    return mailer_from_url(context.settings.smtp_url)


MailerDep = Annotated[Mailer, Depends(get_mailer)]
AdministrationDep = Annotated[Administration, Depends(get_administration)]
