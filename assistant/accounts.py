"""Who is asking: staff accounts (agents, admins) with argon2 password hashes, their login sessions,
and citizen web sessions. Session tokens are random and only their SHA-256 is stored, so a copy of
the database logs nobody in.

CLI (prints a generated one-time password; there is never a fixed default):

    python -m assistant.accounts create-admin <username>
    python -m assistant.accounts create-user <username> --role agent|admin [--name 显示名]
    python -m assistant.accounts reset-password <username>
    python -m assistant.accounts first-admin      # `make run`: creates "admin" only if no admin exists
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import re
import secrets
import sys
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assistant.db import CitizenSession, StaffSession, StaffUser, sessions, upgrade, utcnow

ROLES = ("agent", "admin")
USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,40}$")
_hasher = PasswordHasher()
# Verified when the username does not exist, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-password")


class AccountError(ValueError):
    """A refusal the user should read (Chinese)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)


def check_password_rules(password: str) -> None:
    if len(password) < 10:
        raise AccountError("密码至少需要10个字符")
    if len(password) > 200:
        raise AccountError("密码过长")


# ---------------------------------------------------------------- staff accounts

def create_user(s: Session, username: str, role: str, *, display_name: str | None = None,
                password: str | None = None) -> tuple[StaffUser, str]:
    """A new account; without a password one is generated and must be changed at first login."""
    if role not in ROLES:
        raise AccountError(f"角色只能是 {' / '.join(ROLES)}")
    if not USERNAME.fullmatch(username or ""):
        raise AccountError("用户名为2-40位字母、数字、点、下划线或连字符")
    generated = password is None
    password = new_password() if generated else password
    check_password_rules(password)
    if s.scalar(select(StaffUser).where(func.lower(StaffUser.username) == username.lower())):
        raise AccountError(f"用户名 {username} 已存在")
    user = StaffUser(username=username, display_name=(display_name or username)[:40], role=role,
                     password_hash=_hasher.hash(password), active=True, failed_logins=0,
                     must_change_password=generated)
    s.add(user)
    try:
        s.flush()
    except IntegrityError:
        raise AccountError(f"用户名 {username} 已存在") from None
    return user, password


def set_password(s: Session, user: StaffUser, password: str, *, one_time: bool = False) -> None:
    check_password_rules(password)
    user.password_hash = _hasher.hash(password)
    user.must_change_password = one_time
    user.failed_logins, user.locked_until = 0, None
    # Every other session of this account ends: whoever knew the old password is out.
    s.execute(delete(StaffSession).where(StaffSession.user_id == user.id))


WRONG_CREDENTIALS = "用户名或密码错误"
LOCKED_NOW = "密码错误次数过多，账号已锁定{minutes}分钟"
STILL_LOCKED = "密码错误次数过多，账号已锁定，请{minutes}分钟后再试或联系管理员"


def _dummy_verify(password: str) -> None:
    try:
        _hasher.verify(_DUMMY_HASH, password or "")
    except VerificationError:
        pass


def _minutes_left(until: dt.datetime, now: dt.datetime) -> int:
    return max(1, int((until - now).total_seconds() // 60) + 1)


def _ghost_failure(store, username: str, max_failures: int, lockout_minutes: int, now: dt.datetime) -> None:
    """A wrong login for a name that is no account is counted and "locked" exactly like a real
    account's in the shared store, so the lock-out messages never tell which usernames exist."""
    key = "login:ghost:" + hashlib.sha256((username or "").lower().encode()).hexdigest()[:32]
    until = store.get(key + ":locked")
    if until:
        raise AccountError(STILL_LOCKED.format(minutes=_minutes_left(dt.datetime.fromisoformat(until), now)))
    if store.hit(key, 86400) % max_failures == 0:
        store.set(key + ":locked", (now + dt.timedelta(minutes=lockout_minutes)).isoformat(), lockout_minutes * 60)
        raise AccountError(LOCKED_NOW.format(minutes=lockout_minutes))


def authenticate(s: Session, username: str, password: str, *, max_failures: int = 5,
                 lockout_minutes: int = 15, store=None) -> StaffUser:
    """The account for these credentials, or AccountError. Counts failures and locks the account
    for `lockout_minutes` after `max_failures` wrong passwords in a row. With the shared `store`
    (the login route) unknown usernames get the same answers, locks included. The caller commits."""
    user = s.scalar(select(StaffUser).where(func.lower(StaffUser.username) == (username or "").lower()))
    now = utcnow()
    if user is None or not user.active:
        _dummy_verify(password)
        if store is not None:
            _ghost_failure(store, username, max_failures, lockout_minutes, now)
        raise AccountError(WRONG_CREDENTIALS)
    if user.locked_until and user.locked_until > now:
        _dummy_verify(password)  # as long as any other answer: the time taken tells nothing either
        raise AccountError(STILL_LOCKED.format(minutes=_minutes_left(user.locked_until, now)))
    try:
        _hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= max_failures:
            user.locked_until, user.failed_logins = now + dt.timedelta(minutes=lockout_minutes), 0
            raise AccountError(LOCKED_NOW.format(minutes=lockout_minutes))
        raise AccountError(WRONG_CREDENTIALS)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    return user


def start_session(s: Session, user: StaffUser, hours: float) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    s.execute(delete(StaffSession).where(StaffSession.expires_at <= now))  # housekeeping
    s.add(StaffSession(token_hash=token_hash(token), user_id=user.id, created_at=now,
                       expires_at=now + dt.timedelta(hours=hours)))
    return token


def user_for_token(s: Session, token: str | None) -> StaffUser | None:
    if not token:
        return None
    row = s.scalar(select(StaffSession).where(StaffSession.token_hash == token_hash(token)))
    if row is None or row.expires_at <= utcnow():
        return None
    user = s.get(StaffUser, row.user_id)
    return user if user is not None and user.active else None


def end_session(s: Session, token: str | None) -> None:
    if token:
        s.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


def has_admin(s: Session) -> bool:
    return s.scalar(select(func.count()).select_from(StaffUser).where(
        StaffUser.role == "admin", StaffUser.active.is_(True))) > 0


# ---------------------------------------------------------------- citizen web sessions

@dataclass(frozen=True)
class Citizen:
    sender: str  # the Rasa sender id: web-<hex>, api-<client's sender> or wx-<openid>
    channel: str  # web | api | wx


def channel_of(sender: str) -> str:
    prefix = sender.split("-", 1)[0]
    return prefix if prefix in ("web", "wx") else "api"


def new_citizen(s: Session) -> tuple[str, Citizen]:
    token = secrets.token_urlsafe(32)
    sender = "web-" + secrets.token_hex(16)
    s.add(CitizenSession(token_hash=token_hash(token), sender=sender))
    return token, Citizen(sender, "web")


def citizen_for_token(s: Session, token: str | None) -> Citizen | None:
    if not token:
        return None
    row = s.scalar(select(CitizenSession).where(CitizenSession.token_hash == token_hash(token)))
    if row is None:
        return None
    now = utcnow()
    if now - row.last_seen_at > dt.timedelta(minutes=5):  # don't write on every request
        row.last_seen_at = now
    return Citizen(row.sender, "web")


# ---------------------------------------------------------------- CLI

def _cli(argv: list[str] | None = None) -> int:
    from assistant import audit
    from settings import get_settings

    ap = argparse.ArgumentParser(prog="python -m assistant.accounts", description="办事通 staff accounts")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("create-admin", help="create an admin account with a one-time password")
    p.add_argument("username")
    p.add_argument("--name", help="display name")
    p = sub.add_parser("create-user", help="create an agent or admin account with a one-time password")
    p.add_argument("username")
    p.add_argument("--role", choices=ROLES, default="agent")
    p.add_argument("--name", help="display name")
    p = sub.add_parser("reset-password", help="new one-time password; unlocks the account")
    p.add_argument("username")
    sub.add_parser("first-admin", help="create the admin account 'admin' if there is no admin yet")
    args = ap.parse_args(argv)

    settings = get_settings()
    upgrade(settings.database_url)
    url = "http://127.0.0.1:8000/login"
    with sessions(settings.database_url)() as s:
        try:
            if args.cmd == "first-admin":
                if has_admin(s):
                    print(f"==> staff log in at {url} (lost the admin password? "
                          "`python -m assistant.accounts reset-password <username>`)")
                    return 0
                args.cmd, args.username, args.name, args.role = "create-user", "admin", "管理员", "admin"
            if args.cmd in ("create-admin", "create-user"):
                role = "admin" if args.cmd == "create-admin" else args.role
                user, password = create_user(s, args.username, role, display_name=args.name)
                audit.record(s, "system", "user.create", f"user:{user.username}", {"role": role, "via": "cli"})
            else:
                user = s.scalar(select(StaffUser).where(StaffUser.username == args.username))
                if user is None:
                    print(f"没有用户 {args.username}", file=sys.stderr)
                    return 1
                password = new_password()
                set_password(s, user, password, one_time=True)
                audit.record(s, "system", "user.reset_password", f"user:{user.username}", {"via": "cli"})
            s.commit()
        except AccountError as exc:
            print(str(exc), file=sys.stderr)
            return 1
    # Printed to this console once, never logged: the password must be changed at first login.
    print(f"==> {user.role} account '{user.username}' — one-time password: {password}\n"
          f"    log in at {url}; you will be asked to choose a new password.")
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
