"""Admins: index versions (list, activate without downtime, reload)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from embeddings import index as idx
from assistant import audit
from assistant.db import sessions
from web.deps import AdminDep, EngineDep, SettingsDep, current_admin

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[Depends(current_admin)])


class ActivateRequest(BaseModel):
    version: str = Field(min_length=2, max_length=80, pattern=r"^v[\w\-]+$")


@router.get("/versions")
def versions(settings: SettingsDep):
    return {"current": idx.current_version(settings.index_dir), "versions": idx.list_versions(settings.index_dir)}


@router.post("/activate", summary="Roll back or forward to a built version, without downtime")
def activate(req: ActivateRequest, request: Request, settings: SettingsDep,
             eng: EngineDep, user: AdminDep):
    before = idx.current_version(settings.index_dir)
    try:
        eng.reload(req.version)  # load first: a broken version never becomes CURRENT
        idx.set_current(settings.index_dir, req.version)
    except FileNotFoundError:
        raise HTTPException(404, f"没有这个索引版本: {req.version}")
    except idx.IncompatibleIndex as exc:
        raise HTTPException(409, f"该索引版本由其他编码模型生成，不能启用（{exc}）")
    with sessions(settings.database_url)() as s:
        audit.record(s, user.username, "index.activate", f"index:{req.version}", {"from": before})
        s.commit()
    return {"current": req.version}


@router.post("/reload", summary="Load the CURRENT version now")
def reload(eng: EngineDep):
    try:
        return {"current": eng.reload()}
    except idx.IncompatibleIndex as exc:
        raise HTTPException(409, f"当前索引由其他编码模型生成，仍使用原索引（{exc}）")
