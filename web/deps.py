"""Dependencies shared by the routers: settings, the live engine, a database session, and who is
asking — a citizen (web session cookie, `api-` integration, `wx-` WeChat user) or a logged-in staff
member (agent, admin) — plus per-client rate limits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Path, Query, Request, Response
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from assistant import accounts, texts
from assistant.accounts import Citizen, channel_of  # noqa: F401  (part of this module's interface)
from assistant.db import StaffUser, sessions
from assistant.engine import Engine
from assistant.store import StoreUnavailable, shared_store
from settings import Settings, get_settings

log = logging.getLogger("banshitong.access")


# Dependencies that only read memory are `async def`: FastAPI runs a plain `def` dependency in
# its thread pool, a hop that costs more than the dependency itself on the search-as-you-type path.
async def app_settings() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(app_settings)]
# Row ids and counters a client names: bounded to what the databases store (SQLite and PostgreSQL
# integers), so a huge number is a clear 422, never an overflow inside the database driver.
MAX_ID = 2**31 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]



# ---------------------------------------------------------------- one message length limit

def too_long(text: str) -> str | None:
    """The Chinese refusal for a message longer than settings.max_message_chars, else None. The one
    check every channel's edge makes (chat, WeChat, agent replies, ready answers, search): past it
    nothing — Rasa, the actions, the retrieval — ever sees the message."""
    limit = get_settings().max_message_chars
    return texts.TOO_LONG.format(limit=limit) if len(text) > limit else None


def _bounded(text: str) -> str:
    if (refusal := too_long(text)) is not None:
        raise PydanticCustomError("message_too_long", refusal)
    return text


# A message field or query parameter: refused with 422 and texts.TOO_LONG beyond the limit.
MessageText = Annotated[str, AfterValidator(_bounded)]

CITIZEN_COOKIE = "bst_citizen"
STAFF_COOKIE = "bst_staff"
CITIZEN_COOKIE_DAYS = 30


def engine(request: Request) -> Engine:
    eng = request.app.state.engine
    if eng is None:
        raise HTTPException(503, "知识库索引尚未建立，请管理员运行 make setup")
    return eng


async def _engine_dep(request: Request) -> Engine:
    return engine(request)


EngineDep = Annotated[Engine, Depends(_engine_dep)]


def backends_available(settings: SettingsDep) -> None:
    """503 while the shared database or store is down: a conversation must not go on without its
    state (Rasa would quietly start it over). Costs one trivial query each."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from assistant.db import engine_for
    from assistant.store import StoreUnavailable, shared_store

    try:
        with engine_for(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        shared_store(settings).get("ping")
    except (OperationalError, StoreUnavailable) as exc:
        raise HTTPException(503, "服务暂时不可用，请稍后再试。急事请拨打12345政务服务热线。") from exc


def db(settings: SettingsDep) -> Iterator[Session]:
    """One database session per request; routes commit what they change."""
    with sessions(settings.database_url)() as s:
        yield s


DbDep = Annotated[Session, Depends(db)]
SessionDep = DbDep  # the name the admin routes use


# ---------------------------------------------------------------- citizens

def set_citizen_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(CITIZEN_COOKIE, token, max_age=CITIZEN_COOKIE_DAYS * 86400, httponly=True,
                        samesite="lax", secure=settings.cookie_secure, path="/")


def ensure_citizen(request: Request, response: Response) -> Citizen:
    """The web citizen behind the `bst_citizen` cookie; a new session (and cookie) when there is
    none or it is unknown. The client never chooses its identity."""
    settings = get_settings()
    with sessions(settings.database_url)() as s:
        citizen = accounts.citizen_for_token(s, request.cookies.get(CITIZEN_COOKIE))
        if citizen is None:
            token, citizen = accounts.new_citizen(s)
            set_citizen_cookie(response, token, settings)
            request.state.citizen_cookie = token
        s.commit()
    return citizen


def current_citizen(request: Request, settings: SettingsDep) -> Citizen:
    """A citizen with an existing web session; 401 without one (open the chat page first)."""
    with sessions(settings.database_url)() as s:
        citizen = accounts.citizen_for_token(s, request.cookies.get(CITIZEN_COOKIE))
        s.commit()
    if citizen is None:
        raise HTTPException(401, "会话已失效，请刷新页面")
    return citizen


CitizenDep = Annotated[Citizen, Depends(current_citizen)]


def citizen_of(request: Request) -> Citizen | None:
    """The citizen behind the session cookie, or None (no cookie, or one the server did not issue)."""
    with sessions(get_settings().database_url)() as s:
        citizen = accounts.citizen_for_token(s, request.cookies.get(CITIZEN_COOKIE))
        s.commit()
    return citizen


def new_citizen(response: Response) -> Citizen:
    """A fresh session (a new Rasa sender, so the conversation starts over) and its cookie."""
    settings = get_settings()
    with sessions(settings.database_url)() as s:
        token, citizen = accounts.new_citizen(s)
        s.commit()
    set_citizen_cookie(response, token, settings)
    return citizen


def chat_sender(request: Request, response: Response, body_sender: str) -> Citizen:
    """Who is chatting on /api/chat: a browser that has (or had) a session cookie is its web
    citizen; a plain integration call is `api-<sender>`, which can never reach `web-` or `wx-`."""
    if CITIZEN_COOKIE in request.cookies:
        return ensure_citizen(request, response)
    return Citizen("api-" + body_sender[:60], "api")


# ---------------------------------------------------------------- staff

def staff_user(request: Request, settings: Settings) -> StaffUser | None:
    """The logged-in staff member (detached from its DB session), or None."""
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        return None
    if hasattr(request.state, "staff_user"):
        return request.state.staff_user
    with sessions(settings.database_url)() as s:
        user = accounts.user_for_token(s, token)
    request.state.staff_user = user
    return user


# Until the one-time password is changed only these answer; everything else says so.
_BEFORE_PASSWORD_CHANGE = ("/api/auth/me", "/api/auth/password", "/api/auth/logout")


def current_staff(request: Request, settings: SettingsDep) -> StaffUser:
    user = staff_user(request, settings)
    if user is None:
        raise HTTPException(401, "请先登录")
    if user.must_change_password and request.url.path not in _BEFORE_PASSWORD_CHANGE:
        raise HTTPException(403, "请先修改初始密码")
    return user


StaffDep = Annotated[StaffUser, Depends(current_staff)]


async def current_agent(user: StaffDep) -> StaffUser:
    if user.role not in ("agent", "admin"):
        raise HTTPException(403, "需要坐席或管理员权限")
    return user


async def current_admin(user: StaffDep) -> StaffUser:
    if user.role != "admin":
        raise HTTPException(403, "需要管理员权限")
    return user


AgentDep = Annotated[StaffUser, Depends(current_agent)]
AdminDep = Annotated[StaffUser, Depends(current_admin)]


class LoginRedirect(HTTPException):
    """Raised by `staff_page`: a 303 to the login page (browsers follow the Location header)."""


def staff_page(role: str = "agent"):
    """Dependency for HTML pages: the staff member, or a redirect to `/login?next=<this path>`
    (also when the one-time password is not changed yet, or the role is missing). Usage:

        @router.get("/agent")
        def agent_page(request: Request, user: Annotated[StaffUser, Depends(staff_page("agent"))]): ...
    """
    allowed = {"agent": ("agent", "admin"), "admin": ("admin",)}[role]

    def dependency(request: Request, settings: SettingsDep) -> StaffUser:
        user = staff_user(request, settings)
        if user is None or user.must_change_password or user.role not in allowed:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            why = "&why=role" if user is not None and not user.must_change_password else ""
            raise LoginRedirect(303, "请先登录", headers={"Location": f"/login?next={quote(target, safe='')}{why}"})
        return user

    return dependency


# ---------------------------------------------------------------- rate limits

TOO_MANY = "请求过于频繁，请稍后再试"
STORE_DOWN = "服务暂时繁忙，请稍后再试"


def client_address(request: Request, settings: Settings) -> str:
    """The client's address. X-Forwarded-For counts only when the connection comes from one of
    settings.trusted_proxies (nginx in deploy/): then the nearest address in it that is not a
    proxy itself. Anyone else could write any address there and escape every per-address limit.
    (uvicorn runs with --no-proxy-headers, so request.client is the real peer.)"""
    peer = request.client.host if request.client else "unknown"
    trusted = settings.trusted_proxy_set
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    return next((h for h in reversed(hops) if h not in trusted), peer)


def client_key(request: Request, settings: Settings) -> str | None:
    """Whom a limit counts: a staff member per account (admins, e.g. the evaluation, are not
    limited: None), everyone else per client address."""
    user = staff_user(request, settings)
    if user is not None:
        return None if user.role == "admin" else f"staff:{user.id}"
    return f"ip:{client_address(request, settings)}"


def _limit(settings: Settings, per_minute: int | str) -> int:
    return int(getattr(settings, per_minute)) if isinstance(per_minute, str) else int(per_minute)


def over_limit(request: Request, bucket: str, per_minute: int | str, key: str | None = None) -> bool:
    """True when this client has used up `per_minute` requests of `bucket` this minute (counts
    the request). `per_minute` is a number or a Settings field name ("chat_per_minute"); 0 = no
    limit. `key` overrides the client (e.g. "wx:<openid>": WeChat's servers share addresses).
    Raises StoreUnavailable when the shared store cannot be reached."""
    settings = get_settings()
    limit = _limit(settings, per_minute)
    who = key or client_key(request, settings)
    if limit <= 0 or who is None:
        return False
    return shared_store(settings).hit(f"rl:{bucket}:{who}", 60) > limit


def rate_limit(bucket: str, per_minute: int | str):
    """Dependency: 429 {"detail": "请求过于频繁，请稍后再试"} beyond `per_minute` per client."""

    def dependency(request: Request) -> None:
        try:
            limited = over_limit(request, bucket, per_minute)
        except StoreUnavailable:
            log.warning("shared store unavailable; refusing %s", bucket)
            raise HTTPException(503, STORE_DOWN)
        if limited:
            raise HTTPException(429, TOO_MANY, headers={"Retry-After": "60"})

    return dependency
