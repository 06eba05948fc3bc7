"""The HTTP side, one router module per audience; `server.py` assembles them into the app.

* `citizens.py` — the chat API (`/api/chat`), the WeChat Official Account endpoint, the chat page
* `hotline.py`  — 12345 agents: search, ready answers, hand-overs, the agent console
* `admin.py`    — index versions, the admin console
* `deps.py`     — dependencies shared by the routers (settings, engine, who is asking)

Templates and static files live beside them in `templates/<audience>/` and `static/<audience>/`.
Routes are thin: the work is done by the domain package `assistant/`.
"""
