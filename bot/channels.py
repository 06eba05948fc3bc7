"""The one input channel of the Rasa server: Rasa's REST channel, but only for callers that know
BST_RASA_TOKEN (the app: web/citizens.py). Rasa's `--auth-token` guards its HTTP API, not the
channels, so the plain `rest` channel let any local process chat as any sender — `wx-<openid>`
included — and read that citizen's bookings.

    POST /webhooks/banshitong/webhook   Authorization: Bearer <BST_RASA_TOKEN>
"""

from __future__ import annotations

import hmac
from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic.exceptions import Unauthorized
from sanic.request import Request

from bot.serve import token


class TokenRestInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "banshitong"

    def __init__(self, secret: Text) -> None:
        self.secret = secret

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "TokenRestInput":
        return cls(token())

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        # The first thing the channel's webhook does with a request: refuse it without the token.
        given = req.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.secret}".encode()):
            raise Unauthorized("token required")
        return await super()._extract_sender(req)
