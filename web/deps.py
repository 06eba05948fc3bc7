"""Dependencies shared by the routers: the live engine and who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from assistant.engine import Engine
from settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def engine(request: Request) -> Engine:
    eng = request.app.state.engine
    if eng is None:
        raise HTTPException(503, "知识库索引尚未建立，请管理员运行 make setup")
    return eng


EngineDep = Annotated[Engine, Depends(engine)]


def admin(settings: SettingsDep, x_admin_token: Annotated[str | None, Header()] = None) -> None:
    if not settings.admin_token:
        raise HTTPException(403, "管理接口未启用：请设置 BST_ADMIN_TOKEN")
    if x_admin_token != settings.admin_token:
        raise HTTPException(401, "管理口令错误")


def agent(settings: SettingsDep, x_agent_token: Annotated[str | None, Header()] = None) -> None:
    """Hotline endpoints are open on a trusted network unless BST_AGENT_TOKEN is set."""
    if settings.agent_token and x_agent_token != settings.agent_token:
        raise HTTPException(401, "坐席口令错误")


# ---------- database session (admin helper) ----------
from collections.abc import Iterator  # noqa: E402

from sqlalchemy.orm import Session  # noqa: E402

from assistant.db import sessions  # noqa: E402


def db_session(settings: SettingsDep) -> Iterator[Session]:
    """One session per request; the route commits what it changes (with its audit entry)."""
    with sessions(settings.database_url)() as session:
        yield session


SessionDep = Annotated[Session, Depends(db_session)]


# ======================================================================================================
# BEGIN minimal staff auth — a LOCAL STAND-IN written by the admin helper exactly per CONTRACT.md so the
# admin pages can be tested before the merge. The access helper's real version replaces this block
# (StaffDep/AgentDep/AdminDep, staff_page(role), GET /login, /api/auth/login|logout|me).
# ======================================================================================================
import datetime as _dt  # noqa: E402
import hashlib as _hashlib  # noqa: E402
import secrets as _secrets  # noqa: E402
from urllib.parse import quote as _quote  # noqa: E402

from fastapi import APIRouter, Response  # noqa: E402
from pydantic import BaseModel  # noqa: E402
from sqlalchemy import select  # noqa: E402

from assistant.db import StaffSession, StaffUser, utcnow  # noqa: E402

STAFF_COOKIE = "bst_staff"
STAFF_HOURS = 8


def _token_hash(token: str) -> str:
    return _hashlib.sha256(token.encode()).hexdigest()


def _staff_from_cookie(request: Request, session: Session) -> StaffUser | None:
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        return None
    row = session.scalars(select(StaffSession).where(StaffSession.token_hash == _token_hash(token))).first()
    if row is None or row.expires_at < utcnow():
        return None
    user = session.get(StaffUser, row.user_id)
    return user if user and user.active else None


def staff(request: Request, session: SessionDep) -> StaffUser:
    user = _staff_from_cookie(request, session)
    if user is None:
        raise HTTPException(401, "请先登录")
    return user


StaffDep = Annotated[StaffUser, Depends(staff)]


def _agent(user: StaffDep) -> StaffUser:
    if user.role not in ("agent", "admin"):
        raise HTTPException(403, "没有权限")
    return user


def _admin(user: StaffDep) -> StaffUser:
    if user.role != "admin":
        raise HTTPException(403, "需要管理员权限")
    return user


AgentDep = Annotated[StaffUser, Depends(_agent)]
AdminDep = Annotated[StaffUser, Depends(_admin)]


def staff_page(role: str):
    """Dependency for HTML pages: the staff user, or a redirect to /login?next=<path>."""

    def dep(request: Request, session: SessionDep) -> StaffUser:
        user = _staff_from_cookie(request, session)
        if user is None:
            raise HTTPException(303, "请先登录", headers={"Location": f"/login?next={_quote(request.url.path)}"})
        if role == "admin" and user.role != "admin" or role == "agent" and user.role not in ("agent", "admin"):
            raise HTTPException(403, "没有权限")
        return user

    return dep


class _Login(BaseModel):
    username: str
    password: str


auth_router = APIRouter(tags=["staff"])


@auth_router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str = "/admin"):
    from web.admin import templates

    return templates.TemplateResponse(request, "login.html", {"next": next if next.startswith("/") else "/admin"})


@auth_router.post("/api/auth/login")
def login(body: _Login, response: Response, session: SessionDep):
    from argon2 import PasswordHasher
    from argon2.exceptions import VerificationError

    user = session.scalars(select(StaffUser).where(StaffUser.username == body.username)).first()
    try:
        ok = user is not None and user.active and PasswordHasher().verify(user.password_hash, body.password)
    except VerificationError:
        ok = False
    if not ok:
        raise HTTPException(401, "用户名或密码错误")
    token = _secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_token_hash(token), user_id=user.id,
                             expires_at=utcnow() + _dt.timedelta(hours=STAFF_HOURS)))
    user.last_login_at = utcnow()
    session.commit()
    response.set_cookie(STAFF_COOKIE, token, max_age=STAFF_HOURS * 3600, httponly=True, samesite="strict", path="/")
    return {"username": user.username, "display_name": user.display_name, "role": user.role}


@auth_router.post("/api/auth/logout")
def logout(request: Request, response: Response, session: SessionDep):
    token = request.cookies.get(STAFF_COOKIE)
    if token:
        for row in session.scalars(select(StaffSession).where(StaffSession.token_hash == _token_hash(token))):
            session.delete(row)
        session.commit()
    response.delete_cookie(STAFF_COOKIE, path="/")
    return {"ok": True}


@auth_router.get("/api/auth/me")
def me(user: StaffDep):
    return {"username": user.username, "display_name": user.display_name, "role": user.role}
# ======================================================================================================
# END minimal staff auth stand-in
# ======================================================================================================
