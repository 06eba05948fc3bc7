"""`rasa run` with its HTTP API behind the project's token (Procfile, deploy/cluster.sh):

    python -m bot.serve run --enable-api --model … --credentials bot/credentials.yml …

The token comes from BST_RASA_TOKEN (the Procfile reads var/secrets/rasa_token, scripts/secret.py)
and is handed to Rasa's own `--auth-token` here, inside the process: on the command line every
local user could read it in /proc/<pid>/cmdline. Without a token Rasa does not start, so its
tracker API (a booking's name and phone) is never open. The REST channel the app talks to checks
the same token (bot/channels.py).
"""

from __future__ import annotations

import os
import sys

MIN_LENGTH = 16


def token() -> str:
    value = os.environ.get("BST_RASA_TOKEN", "")
    if len(value) < MIN_LENGTH:
        raise SystemExit(f"BST_RASA_TOKEN is not set (at least {MIN_LENGTH} characters): "
                         "`make run` generates one (python3 scripts/secret.py rasa_token)")
    return value


def main() -> None:
    sys.argv = ["rasa", *sys.argv[1:], "--auth-token", token()]
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
