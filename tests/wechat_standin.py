"""A local stand-in of the WeChat API for tests: issues access tokens and records 客服消息.

    python -m uvicorn tests.wechat_standin:app --port 26600
    env WX_STANDIN_APPID / WX_STANDIN_SECRET: the only credentials it accepts

It checks what WeChat checks (credentials, token, the 2048-byte text limit) and answers with
WeChat's error codes, so the app's client code meets the same answers it would in production.
GET /_sent shows what was received.
"""

from __future__ import annotations

import json
import os
import secrets

from fastapi import FastAPI, Request

app = FastAPI(title="WeChat API stand-in")
APPID = os.environ.get("WX_STANDIN_APPID", "wxstandin")
SECRET = os.environ.get("WX_STANDIN_SECRET", "standin-secret")
state: dict = {"tokens": set(), "issued": 0, "sent": []}


@app.get("/cgi-bin/token")
def token(grant_type: str = "", appid: str = "", secret: str = ""):
    if grant_type != "client_credential":
        return {"errcode": 40002, "errmsg": "invalid grant_type"}
    if appid != APPID or secret != SECRET:
        return {"errcode": 40125, "errmsg": "invalid appsecret"}
    tok = secrets.token_hex(16)
    state["tokens"].add(tok)
    state["issued"] += 1
    return {"access_token": tok, "expires_in": 7200}


@app.post("/cgi-bin/message/custom/send")
async def custom_send(request: Request, access_token: str = ""):
    if access_token not in state["tokens"]:
        return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
    try:
        body = json.loads(await request.body())
    except ValueError:
        return {"errcode": 47001, "errmsg": "data format error"}
    if body.get("msgtype") == "text":
        content = (body.get("text") or {}).get("content") or ""
        if len(content.encode()) > 2048:
            return {"errcode": 45002, "errmsg": "content size out of limit"}
    state["sent"].append(body)
    return {"errcode": 0, "errmsg": "ok"}


@app.get("/_sent")
def sent():
    return {"sent": state["sent"], "issued": state["issued"]}
