"""Prints a generated secret of this checkout, creating it on first use: var/secrets/<name>, mode 600.

    BST_RASA_TOKEN=${BST_RASA_TOKEN:-$(python3 scripts/secret.py rasa_token)}   # the Procfile

No secret of the project has a working default: `make run` gets a random one here the first time,
and every process of the checkout reads the same file. Standard library only (both virtual
environments and the system Python run it).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

DIR = Path(__file__).resolve().parent.parent / "var/secrets"


def secret(name: str) -> str:
    if not re.fullmatch(r"[a-z_]{1,40}", name):
        raise SystemExit(f"bad secret name: {name!r}")
    path = DIR / name
    DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # O_EXCL: two processes starting together agree on one value
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        value = secrets.token_urlsafe(32)
        f.write(value + "\n")
    return value


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python3 scripts/secret.py NAME")
    print(secret(sys.argv[1]))
