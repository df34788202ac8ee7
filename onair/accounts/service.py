"""Accounts: creating users, checking passwords, opening and closing sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import Role, Session, User
from onair.accounts.passwords import hash_password, needs_rehash, verify_password
from onair.clock import Clock
from onair.errors import ApiError

USERNAME = re.compile(r"^[a-z0-9_]{3,32}$")
MIN_PASSWORD = 8


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    db: AsyncSession,
    clock: Clock,
    *,
    username: str,
    email: str,
    password: str,
    display_name: str | None = None,
    role: Role = Role.listener,
) -> User:
    username = username.strip().lower()
    email = email.strip().lower()
    if not USERNAME.match(username):
        raise ApiError(
            422, "invalid", "username: 3 to 32 characters, letters, digits and underscores"
        )
    if len(password) < MIN_PASSWORD:
        raise ApiError(422, "invalid", f"password: at least {MIN_PASSWORD} characters")
    taken = await db.scalar(
        select(func.count()).where(or_(User.username == username, User.email == email))
    )
    if taken:
        raise ApiError(409, "taken", "that username or email is already registered")
    user = User(
        username=username,
        email=email,
        display_name=(display_name or username).strip()[:64] or username,
        password_hash=hash_password(password),
        role=role,
        created_at=clock.now(),
    )
    db.add(user)
    await db.flush()
    return user


async def authenticate(db: AsyncSession, clock: Clock, login: str, password: str) -> User:
    login = login.strip().lower()
    user = await db.scalar(select(User).where(or_(User.username == login, User.email == login)))
    if user is None or not verify_password(user.password_hash, password):
        raise ApiError(401, "bad_credentials", "wrong username or password")
    # Only after the password: a stranger learns nothing about an account's standing.
    barred = user.barred(clock.now())
    if barred == "banned":
        raise ApiError(403, "banned", "this account is banned")
    if barred == "suspended" and user.suspended_until is not None:
        until = user.suspended_until.astimezone(UTC)
        raise ApiError(
            403, "suspended", f"this account is suspended until {until:%Y-%m-%d %H:%M} UTC"
        )
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


async def open_session(db: AsyncSession, clock: Clock, user: User, days: int) -> str:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    db.add(
        Session(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    await db.flush()
    return token


async def user_for_token(db: AsyncSession, clock: Clock, token: str) -> User | None:
    """The user a session cookie signs in, in one query (every signed-in request asks)."""
    token_hash, now = _token_hash(token), clock.now()
    user = await db.scalar(
        select(User)
        .join(Session, Session.user_id == User.id)
        .where(Session.token_hash == token_hash, Session.expires_at > now)
    )
    if user is None:
        # An expired session is forgotten when it is next shown.
        result = await db.execute(
            delete(Session).where(Session.token_hash == token_hash, Session.expires_at <= now)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            await db.commit()
        return None
    # Suspending or banning deletes the sessions too; this holds should one be left over.
    return None if user.barred(now) else user


async def close_session(db: AsyncSession, token: str) -> None:
    await db.execute(delete(Session).where(Session.token_hash == _token_hash(token)))


async def login_key(db: AsyncSession, login: str) -> str:
    """What wrong passwords are counted against: the account, whichever of its names (username
    or email) is typed; a name that matches no account is counted as itself."""
    login = login.strip().lower()
    user_id = await db.scalar(
        select(User.id).where(or_(User.username == login, User.email == login))
    )
    return f"user:{user_id}" if user_id is not None else f"name:{login}"


async def user_by_username(db: AsyncSession, username: str) -> User | None:
    return await db.scalar(select(User).where(User.username == username.strip().lower()))
