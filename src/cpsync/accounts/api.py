"""The accounts JSON API under /api/v1: who is signed in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cpsync.accounts.deps import CsrfProtected, CurrentUser
from cpsync.accounts.schemas import MeOut

router = APIRouter(prefix="/api/v1", tags=["api"], dependencies=[CsrfProtected])
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Not signed in"}}


@router.get("/me", response_model=MeOut, responses=UNAUTHORIZED, summary="The signed-in user")
async def me(user: CurrentUser) -> MeOut:
    return MeOut.model_validate(user, from_attributes=True)
