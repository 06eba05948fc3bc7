"""The audit log: who changed what, when. Callers add the entry in their own transaction, so the
record and the change it describes are committed (or rolled back) together."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from assistant.db import AuditEntry


def record(session: Session, actor: str, action: str, target: str, detail: dict | None = None) -> AuditEntry:
    entry = AuditEntry(actor=actor[:40], action=action[:40], target=target[:120],
                       detail=json.dumps(detail, ensure_ascii=False) if detail is not None else None)
    session.add(entry)
    return entry
