"""Who is asking, over HTTP: a citizen web session for clients other than the chat page; staff
accounts (the login page, log in / out, who am I, change password); and for admins the accounts
list, creating accounts, and the audit log."""

from __future__ import annotations

import json
from urllib.parse import urlsplit
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field
from sqlalchemy import select

from assistant import accounts, audit
from assistant.store import shared_store
from assistant.db import StaffUser
from web.deps import STAFF_COOKIE, AdminDep, DbDep, SettingsDep, StaffDep, ensure_citizen, rate_limit

router = APIRouter(tags=["staff accounts"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")


class SessionOut(BaseModel):
    channel: str


@router.post("/api/session", response_model=SessionOut, tags=["citizens"],
             summary="Start (or keep) a citizen web session: the HttpOnly cookie bst_citizen")
def citizen_session(request: Request, response: Response):
    # The chat page (GET /) does the same; this is for other web clients. The identity stays
    # server-side: the client gets only an unguessable cookie.
    return SessionOut(channel=ensure_citizen(request, response).channel)


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=40)
    password: str = Field(min_length=1, max_length=200)


class StaffOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    must_change_password: bool


def staff_out(u: StaffUser) -> StaffOut:
    return StaffOut(id=u.id, username=u.username, display_name=u.display_name, role=u.role,
                    active=u.active, must_change_password=u.must_change_password)


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site, else "" (the role's own page). Browsers
    drop tabs and newlines inside a URL and read a backslash as a slash, so "/%09/evil.example"
    and "/%5C/evil.example" (decoded) would leave the site: any such character refuses the whole target."""
    target = target or ""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return ""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return ""
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else ""


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request):
    return templates.TemplateResponse(request, "login.html", {"next": safe_next(request.query_params.get("next"))})


@router.post("/api/auth/login", response_model=StaffOut, summary="Staff log in (sets the bst_staff cookie)",
             dependencies=[Depends(rate_limit("login", "login_per_minute"))],
             responses={401: {"description": "wrong credentials or locked"}})
def login(req: LoginRequest, response: Response, s: DbDep, settings: SettingsDep):
    try:
        user = accounts.authenticate(s, req.username, req.password, max_failures=settings.login_max_failures,
                                     lockout_minutes=settings.login_lockout_minutes, store=shared_store(settings))
    except accounts.AccountError as exc:
        s.commit()  # the failure count must stick
        raise HTTPException(401, str(exc))
    token = accounts.start_session(s, user, settings.staff_session_hours)
    s.commit()
    response.set_cookie(STAFF_COOKIE, token, max_age=int(settings.staff_session_hours * 3600), httponly=True,
                        samesite="strict", secure=settings.cookie_secure, path="/")
    return staff_out(user)


@router.post("/api/auth/logout", status_code=204, summary="End this staff session")
def logout(request: Request, response: Response, s: DbDep, settings: SettingsDep):
    accounts.end_session(s, request.cookies.get(STAFF_COOKIE))
    s.commit()
    response.delete_cookie(STAFF_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.cookie_secure)


@router.get("/api/auth/me", response_model=StaffOut, summary="The logged-in staff member")
def me(user: StaffDep):
    return staff_out(user)


class PasswordChange(BaseModel):
    old_password: str = Field(min_length=1, max_length=200)
    # The length rule is accounts.check_password_rules' (one wording: "密码至少需要10个字符").
    new_password: str = Field(min_length=1, max_length=200)


@router.post("/api/auth/password", response_model=StaffOut, summary="Change my password (ends other sessions)",
             dependencies=[Depends(rate_limit("login", "login_per_minute"))])
def change_password(req: PasswordChange, request: Request, response: Response, user: StaffDep, s: DbDep,
                    settings: SettingsDep):
    try:
        accounts.authenticate(s, user.username, req.old_password, max_failures=settings.login_max_failures,
                              lockout_minutes=settings.login_lockout_minutes)
        if req.new_password == req.old_password:
            raise accounts.AccountError("新密码不能与原密码相同")
        me_ = s.get(StaffUser, user.id)
        accounts.set_password(s, me_, req.new_password)
    except accounts.AccountError as exc:
        s.commit()
        raise HTTPException(400, str(exc))
    audit.record(s, user.username, "user.password", f"user:{user.username}")
    token = accounts.start_session(s, me_, settings.staff_session_hours)  # this browser stays logged in
    s.commit()
    response.set_cookie(STAFF_COOKIE, token, max_age=int(settings.staff_session_hours * 3600), httponly=True,
                        samesite="strict", secure=settings.cookie_secure, path="/")
    return staff_out(me_)


# ---------------------------------------------------------------- admins: accounts and audit log

class NewUser(BaseModel):
    username: str = Field(min_length=2, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")
    role: str = Field(pattern="^(agent|admin)$")
    display_name: str | None = Field(default=None, max_length=40)


class NewUserOut(StaffOut):
    one_time_password: str


@router.get("/api/admin/users", response_model=list[StaffOut], summary="Staff accounts")
def users(_: AdminDep, s: DbDep):
    return [staff_out(u) for u in s.scalars(select(StaffUser).order_by(StaffUser.username))]


@router.post("/api/admin/users", response_model=NewUserOut, status_code=201,
             summary="Create an account; answers its one-time password once")
def create_user(req: NewUser, admin: AdminDep, s: DbDep):
    try:
        user, password = accounts.create_user(s, req.username, req.role, display_name=req.display_name)
    except accounts.AccountError as exc:
        raise HTTPException(409 if "已存在" in str(exc) else 400, str(exc))
    audit.record(s, admin.username, "user.create", f"user:{user.username}", {"role": user.role})
    s.commit()
    return NewUserOut(**staff_out(user).model_dump(), one_time_password=password)


class AuditOut(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: dict | None


class AuditPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[AuditOut]


@router.get("/api/admin/audit", response_model=AuditPage, summary="The audit log, newest first")
def audit_log(_: AdminDep, s: DbDep,
              page: Annotated[int, Query(ge=1, le=100000)] = 1,
              per_page: Annotated[int, Query(ge=1, le=200)] = 50,
              actor: Annotated[str | None, Query(max_length=40)] = None,
              action: Annotated[str | None, Query(max_length=40)] = None):
    total, rows = audit.page(s, page, per_page, actor=actor, action=action)
    return AuditPage(total=total, page=page, per_page=per_page, items=[
        AuditOut(id=e.id, at=e.at.isoformat(timespec="seconds") + "Z", actor=e.actor, action=e.action,
                 target=e.target, detail=json.loads(e.detail) if e.detail else None) for e in rows])
