"""The audit log: who changed what, when. Every staff action that changes state calls `record`
inside the same transaction as the change, so a change and its record land (or fail) together."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.db import AuditEntry
from assistant.privacy import mask


def record(session: Session, actor: str, action: str, target: str, detail: dict | None = None) -> AuditEntry:
    """Adds an entry to the caller's session; the caller commits. Numbers in `detail` are masked."""
    entry = AuditEntry(actor=actor[:40], action=action[:40], target=target[:120],
                       detail=mask(json.dumps(detail, ensure_ascii=False)) if detail else None)
    session.add(entry)
    return entry


def page(session: Session, page: int = 1, per_page: int = 50, *, actor: str | None = None,
         action: str | None = None) -> tuple[int, list[AuditEntry]]:
    """(total, entries of this page), newest first."""
    q = select(AuditEntry)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action.startswith(action))
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.scalars(q.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return total, list(rows)
