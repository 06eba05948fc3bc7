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


# ============================================================================================
# LOCAL STAND-IN (agent helper) for the access helper's staff login and citizen sessions,
# written exactly to CONTRACT.md so the hotline console can be built and tested before that
# branch is merged. The lead keeps the access helper's version of everything below.
# ============================================================================================
import datetime as _dt  # noqa: E402
import hashlib as _hashlib  # noqa: E402
import secrets as _secrets  # noqa: E402
from dataclasses import dataclass as _dataclass  # noqa: E402
from html import escape as _escape  # noqa: E402
from urllib.parse import quote as _quote  # noqa: E402

from fastapi import APIRouter as _APIRouter, Form as _Form, Response as _Response  # noqa: E402
from fastapi.responses import HTMLResponse as _HTMLResponse, RedirectResponse as _RedirectResponse  # noqa: E402
from pydantic import BaseModel as _BaseModel  # noqa: E402

from assistant.db import CitizenSession, StaffSession, StaffUser, sessions, utcnow  # noqa: E402

STAFF_COOKIE, CITIZEN_COOKIE = "bst_staff", "bst_citizen"
STAFF_SESSION_HOURS = 8


def _sha(token: str) -> str:
    return _hashlib.sha256(token.encode()).hexdigest()


def _staff_from_cookie(request: Request, settings: Settings) -> StaffUser | None:
    token = request.cookies.get(STAFF_COOKIE)
    if not token:
        return None
    with sessions(settings.database_url)() as s:
        sess = s.query(StaffSession).filter_by(token_hash=_sha(token)).first()
        if sess is None or sess.expires_at <= utcnow():
            return None
        user = s.get(StaffUser, sess.user_id)
        return user if user is not None and user.active else None


def current_staff(request: Request, settings: SettingsDep) -> StaffUser:
    user = _staff_from_cookie(request, settings)
    if user is None:
        raise HTTPException(401, "请先登录")
    return user


StaffDep = Annotated[StaffUser, Depends(current_staff)]


def _agent_user(user: StaffDep) -> StaffUser:
    if user.role not in ("agent", "admin"):
        raise HTTPException(403, "没有坐席权限")
    return user


def _admin_user(user: StaffDep) -> StaffUser:
    if user.role != "admin":
        raise HTTPException(403, "没有管理员权限")
    return user


AgentDep = Annotated[StaffUser, Depends(_agent_user)]
AdminDep = Annotated[StaffUser, Depends(_admin_user)]


def staff_page(role: str):
    """Dependency for HTML pages: the staff user, or a redirect to /login?next=<path>."""
    def dep(request: Request, settings: SettingsDep) -> StaffUser:
        user = _staff_from_cookie(request, settings)
        if user is None:
            raise HTTPException(303, "请先登录", headers={"Location": "/login?next=" + _quote(request.url.path)})
        if role == "admin" and user.role != "admin" or user.role not in ("agent", "admin"):
            raise HTTPException(403, "没有权限")
        return user
    return dep


@_dataclass
class Citizen:
    sender: str
    channel: str


def channel_of(sender: str) -> str:
    return "web" if sender.startswith("web-") else "wx" if sender.startswith("wx-") else "api"


def _citizen_from_cookie(request: Request, settings: Settings) -> Citizen | None:
    token = request.cookies.get(CITIZEN_COOKIE)
    if not token:
        return None
    with sessions(settings.database_url)() as s:
        row = s.query(CitizenSession).filter_by(token_hash=_sha(token)).first()
        return Citizen(row.sender, "web") if row else None


def ensure_citizen(request: Request, response: _Response) -> Citizen:
    settings = get_settings()
    found = _citizen_from_cookie(request, settings)
    if found:
        return found
    token, sender = _secrets.token_urlsafe(32), "web-" + _secrets.token_hex(16)
    with sessions(settings.database_url)() as s:
        s.add(CitizenSession(token_hash=_sha(token), sender=sender))
        s.commit()
    response.set_cookie(CITIZEN_COOKIE, token, httponly=True, samesite="lax", max_age=30 * 86400)
    return Citizen(sender, "web")


def current_citizen(request: Request, settings: SettingsDep) -> Citizen:
    found = _citizen_from_cookie(request, settings)
    if found is None:
        raise HTTPException(401, "会话已失效，请刷新页面")
    return found


CitizenDep = Annotated[Citizen, Depends(current_citizen)]


def chat_sender(request: Request, response: _Response, body_sender: str) -> Citizen:
    """Who is chatting: the session cookie's web citizen, else the body's sender. CONTRACT (and the
    access helper's version): `api-<sender>`; this stand-in keeps main's raw id so the existing
    dialogue tests still find their hand-overs."""
    if CITIZEN_COOKIE in request.cookies:
        return ensure_citizen(request, response)
    return Citizen(body_sender[:64], "api")


local_auth_router = _APIRouter(tags=["auth (stand-in)"])


class _Login(_BaseModel):
    username: str
    password: str


def _login(username: str, password: str, response: _Response, settings: Settings) -> StaffUser:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    with sessions(settings.database_url)() as s:
        user = s.query(StaffUser).filter_by(username=username.strip()).first()
        try:
            ok = user is not None and user.active and PasswordHasher().verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            raise HTTPException(401, "用户名或密码错误")
        token = _secrets.token_urlsafe(32)
        s.add(StaffSession(token_hash=_sha(token), user_id=user.id,
                           expires_at=utcnow() + _dt.timedelta(hours=STAFF_SESSION_HOURS)))
        user.last_login_at = utcnow()
        s.commit()
    response.set_cookie(STAFF_COOKIE, token, httponly=True, samesite="strict", max_age=STAFF_SESSION_HOURS * 3600)
    return user


def _safe_next(path: str) -> str:
    return path if path.startswith("/") and not path.startswith("//") else "/agent"


@local_auth_router.get("/login", response_class=_HTMLResponse, include_in_schema=False)
def login_page(next: str = "/agent", error: str = ""):
    msg = '<p role="alert">用户名或密码错误</p>' if error else ""
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>登录 - 办事通</title></head>'
            f'<body><main><h1>工作人员登录</h1>{msg}<form method="post" action="/login">'
            f'<input type="hidden" name="next" value="{_escape(_safe_next(next))}">'
            '<p><label for="u">用户名</label> <input id="u" name="username" autocomplete="username" required></p>'
            '<p><label for="p">密码</label> <input id="p" name="password" type="password" '
            'autocomplete="current-password" required></p><button type="submit">登录</button></form></main></body></html>')


@local_auth_router.post("/login", include_in_schema=False)
def login_form(settings: SettingsDep, username: Annotated[str, _Form()], password: Annotated[str, _Form()],
               next: Annotated[str, _Form()] = "/agent"):
    ok = _RedirectResponse(_safe_next(next), status_code=303)
    try:
        _login(username, password, ok, settings)
    except HTTPException:
        return _RedirectResponse("/login?error=1&next=" + _quote(_safe_next(next)), status_code=303)
    return ok


@local_auth_router.post("/api/auth/login")
def api_login(req: _Login, response: _Response, settings: SettingsDep):
    user = _login(req.username, req.password, response, settings)
    return {"username": user.username, "display_name": user.display_name, "role": user.role}


@local_auth_router.post("/api/auth/logout")
def api_logout(request: Request, response: _Response, settings: SettingsDep):
    token = request.cookies.get(STAFF_COOKIE)
    if token:
        with sessions(settings.database_url)() as s:
            s.query(StaffSession).filter_by(token_hash=_sha(token)).delete()
            s.commit()
    response.delete_cookie(STAFF_COOKIE)
    return {"ok": True}


@local_auth_router.get("/api/auth/me")
def api_me(user: StaffDep):
    return {"username": user.username, "display_name": user.display_name, "role": user.role}
# ==================================== END OF LOCAL STAND-IN ====================================
