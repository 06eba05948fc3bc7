"""Staff accounts for tests — a stand-in for the access helper's `staff_user(role)` / `login(...)`
fixtures (CONTRACT.md) until that branch is merged; the lead keeps one version."""

from __future__ import annotations

import secrets

import httpx

from assistant.db import StaffUser, sessions, upgrade


def make_staff(database_url: str, role: str = "agent", display_name: str | None = None) -> tuple[str, str]:
    """Creates an active staff account directly in the database; returns (username, password)."""
    from argon2 import PasswordHasher

    upgrade(database_url)
    username = f"{role}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    with sessions(database_url)() as s:
        s.add(StaffUser(username=username, display_name=display_name or username, role=role,
                        password_hash=PasswordHasher().hash(password)))
        s.commit()
    return username, password


def login(url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    r = client.post("/api/auth/login", json={"username": username, "password": password})
    r.raise_for_status()
    return client
