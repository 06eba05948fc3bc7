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


# ---------------------------------------------------------------- citizen identity
# CONTRACT.md "Identities": the access helper owns the final version of this block; this minimal one
# follows the same names and behaviour so the chat page works before the merge (keep one at merge).
import datetime as _dt  # noqa: E402
import hashlib  # noqa: E402
import secrets  # noqa: E402
from dataclasses import dataclass  # noqa: E402

from fastapi import Response  # noqa: E402

from assistant.db import CitizenSession, sessions, utcnow  # noqa: E402

CITIZEN_COOKIE = "bst_citizen"
CITIZEN_MAX_AGE = 30 * 24 * 3600


@dataclass
class Citizen:
    sender: str
    channel: str


def channel_of(sender: str) -> str:
    return "web" if sender.startswith("web-") else "wx" if sender.startswith("wx-") else "api"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def citizen_of(request: Request) -> Citizen | None:
    """The citizen behind the session cookie, or None (no cookie, or one the server did not issue)."""
    token = request.cookies.get(CITIZEN_COOKIE)
    if not token or len(token) > 100:
        return None
    with sessions(get_settings().database_url)() as s:
        row = s.query(CitizenSession).filter_by(token_hash=_token_hash(token)).one_or_none()
        if row is None:
            return None
        if utcnow() - row.last_seen_at > _dt.timedelta(hours=1):
            row.last_seen_at = utcnow()
            s.commit()
        return Citizen(row.sender, "web")


def new_citizen(response: Response) -> Citizen:
    """Issues a fresh session (a new Rasa sender, so the conversation starts over)."""
    token = secrets.token_urlsafe(32)
    sender = "web-" + secrets.token_hex(16)
    with sessions(get_settings().database_url)() as s:
        s.add(CitizenSession(token_hash=_token_hash(token), sender=sender))
        s.commit()
    response.set_cookie(CITIZEN_COOKIE, token, max_age=CITIZEN_MAX_AGE, httponly=True, samesite="lax",
                        secure=False, path="/")
    return Citizen(sender, "web")


def ensure_citizen(request: Request, response: Response) -> Citizen:
    return citizen_of(request) or new_citizen(response)


CitizenDep = Annotated[Citizen, Depends(ensure_citizen)]
