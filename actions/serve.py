"""The action server: rasa_sdk's app with the two things its own entry point leaves open.

    BST_ACTION_TOKEN=… python -m actions.serve --port 5055

* It listens on loopback (``BST_ACTION_HOST``, default 127.0.0.1), not rasa_sdk's 0.0.0.0.
* ``/webhook`` answers only requests carrying the token Rasa sends (``token:`` in bot/endpoints.yml, which
  Rasa adds as ``?token=``): an action reads the tracker it is sent, so whoever could post one could make
  the bot read out or cancel any citizen's booking. ``/health`` stays open for the app's health check.
  There is no default: without ``BST_ACTION_TOKEN`` the server does not start (the Procfile creates one
  per checkout with scripts/secret.py).
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from functools import partial

from sanic import Sanic, response
from sanic.worker.loader import AppLoader

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app_for_serve
from rasa_sdk.executor import ActionExecutor

log = logging.getLogger("banshitong.actions")
OPEN_PATHS = ("/health",)


def _token_check(token: str):
    async def check(request):
        if request.path in OPEN_PATHS:
            return None
        given = request.args.get("token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return response.json({"error": "需要有效的令牌"}, status=401)
        return None
    return check


def create_app(token: str) -> Sanic:
    executor = ActionExecutor()
    executor.register_package("actions")
    app = create_app_for_serve(executor, cors_origins=None)
    app.register_middleware(_token_check(token), "request")
    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m actions.serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=int(os.environ.get("BST_ACTION_PORT", "5055")))
    args = ap.parse_args(argv)
    token = os.environ.get("BST_ACTION_TOKEN", "")
    if len(token) < 16:
        print("BST_ACTION_TOKEN is not set (or shorter than 16 characters): the action server does not start "
              "without it (see the Procfile: python3 scripts/secret.py action_token).", file=sys.stderr)
        return 2
    utils.configure_colored_logging("INFO")
    utils.update_sanic_log_level()
    host = os.environ.get("BST_ACTION_HOST", "127.0.0.1")
    loader = AppLoader(factory=partial(create_app, token))
    app = loader.load()
    log.info("action server on http://%s:%d (token required)", host, args.port)
    app.prepare(host=host, port=args.port, workers=1)
    Sanic.serve(primary=app, app_loader=loader)
    return 0


if __name__ == "__main__":
    sys.exit(main())
