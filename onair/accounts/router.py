from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from onair.accounts import service
from onair.accounts.deps import CurrentUser
from onair.accounts.models import Role, User
from onair.context import Ctx, Db, OnAir, client_address
from onair.errors import ApiError

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


class SignUp(BaseModel):
    username: str = Field(min_length=3, max_length=32, examples=["dj_nova"])
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    display_name: str | None = Field(default=None, max_length=64)


class LogIn(BaseModel):
    login: str = Field(min_length=1, max_length=254, description="Username or email.")
    password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    created_at: datetime


class PublicUser(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str


def _set_session_cookie(
    response: Response, request: Request, ctx: OnAir, token: str | None
) -> None:
    name = ctx.settings.secret_cookie_name
    if token is None:
        response.delete_cookie(name, path="/", httponly=True, samesite="lax")
        return
    secure = ctx.settings.cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    response.set_cookie(
        name,
        token,
        max_age=ctx.settings.session_days * 86400,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


async def _start_session(
    response: Response, request: Request, ctx: OnAir, db: Db, user: User
) -> None:
    token = await service.open_session(db, ctx.clock, user, ctx.settings.session_days)
    await db.commit()
    _set_session_cookie(response, request, ctx, token)


@router.post("/signup", status_code=201, response_model=UserOut, summary="Create an account")
async def signup(body: SignUp, request: Request, response: Response, ctx: Ctx, db: Db) -> User:
    await ctx.limiters.signup.acheck(client_address(request))
    user = await service.create_user(
        db,
        ctx.clock,
        username=body.username,
        email=str(body.email),
        password=body.password,
        display_name=body.display_name,
    )
    await _start_session(response, request, ctx, db, user)
    return user


@router.post(
    "/login",
    response_model=UserOut,
    summary="Sign in with username or email",
    description="Wrong passwords are counted per account (its username and email together): "
    "after `login_failures_allowed` of them the account is locked for `login_lockout_minutes` "
    "and answers 429 `locked_out` (with Retry-After) without checking the password.",
)
async def login(body: LogIn, request: Request, response: Response, ctx: Ctx, db: Db) -> User:
    await ctx.limiters.login.acheck(client_address(request))
    # Wrong passwords are counted per account (both its names), so guessing from many
    # addresses still locks it; a locked account's password is not even checked.
    failures = ctx.limiters.login_failure
    account = await service.login_key(db, body.login)
    locked_for = await failures.apeek(account)
    if locked_for > 0:
        raise failures.refusal(locked_for, code="locked_out")
    try:
        user = await service.authenticate(db, ctx.clock, body.login, body.password)
    except ApiError as exc:
        if exc.code == "bad_credentials":
            await failures.aretry_after(account)
        raise
    await _start_session(response, request, ctx, db, user)
    return user


@router.post("/logout", status_code=204, summary="Sign out this browser")
async def logout(request: Request, ctx: Ctx, db: Db) -> Response:
    token = request.cookies.get(ctx.settings.secret_cookie_name)
    if token:
        await service.close_session(db, token)
        await db.commit()
    response = Response(status_code=204)
    _set_session_cookie(response, request, ctx, None)
    return response


@router.get("/me", response_model=UserOut, summary="The signed-in user")
async def me(user: CurrentUser) -> User:
    return user
