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


def admin(settings: SettingsDep, x_admin_token: Annotated[str | None, Header()] = None) -> None:
    if not settings.admin_token:
        raise HTTPException(403, "管理接口未启用：请设置 BST_ADMIN_TOKEN")
    if x_admin_token != settings.admin_token:
        raise HTTPException(401, "管理口令错误")


def agent(settings: SettingsDep, x_agent_token: Annotated[str | None, Header()] = None) -> None:
    """Hotline endpoints are open on a trusted network unless BST_AGENT_TOKEN is set."""
    if settings.agent_token and x_agent_token != settings.agent_token:
        raise HTTPException(401, "坐席口令错误")
