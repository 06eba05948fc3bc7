"""The audit log: who changed what, when. Every staff action that changes state records one entry
in the caller's session, so the entry commits (or rolls back) together with the change itself."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from assistant.db import AuditEntry


def record(session: Session, actor: str, action: str, target: str, detail: dict | None = None) -> AuditEntry:
    entry = AuditEntry(actor=actor[:40], action=action[:40], target=target[:120],
                       detail=json.dumps(detail, ensure_ascii=False, default=str) if detail is not None else None)
    session.add(entry)
    return entry
