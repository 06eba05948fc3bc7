#!/usr/bin/env bash
# Debian packages the project needs beyond Python: the browser, a CJK font and an emoji font (the admin overview's 👍/👎) for the pages;
# PostgreSQL, Redis and nginx for the several-replica deployment (deploy/cluster.sh) and its tests.
# Idempotent: installs only what is missing; needs root (CI and the developer machines are root).
set -euo pipefail
PKGS=(chromium fonts-noto-cjk fonts-noto-color-emoji postgresql redis-server nginx-light)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# i.e. apt-get install chromium fonts-noto-cjk fonts-noto-color-emoji postgresql redis-server nginx-light, only what is missing
if [ "${#missing[@]}" -gt 0 ]; then
    echo "[setup_system] installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
/usr/bin/chromium --version
