"""Who is calling: the signed-in user from the session cookie, for every router to depend on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from onair.accounts.models import User
from onair.accounts.service import user_for_token
from onair.context import Ctx, Db
from onair.errors import ApiError


async def optional_user(request: Request, ctx: Ctx, db: Db) -> User | None:
    token = request.cookies.get(ctx.settings.secret_cookie_name)
    if not token:
        return None
    return await user_for_token(db, ctx.clock, token)


async def required_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise ApiError(401, "unauthorized", "sign in first")
    return user


async def required_moderator(user: Annotated[User, Depends(required_user)]) -> User:
    if not user.is_moderator:
        raise ApiError(403, "forbidden", "moderators only")
    return user


MaybeUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(required_user)]
Moderator = Annotated[User, Depends(required_moderator)]
