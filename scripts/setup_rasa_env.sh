#!/usr/bin/env bash
# Create / update the Rasa 3.6.21 virtual environment .venv/rasa from the lock
# requirements/rasa.txt (see the comments at the top of that file for why each
# pin deviates from rasa's own metadata).
#
# Usage (from the repo root):   bash scripts/setup_rasa_env.sh
#   FORCE=1 bash scripts/setup_rasa_env.sh   reinstall even if the lock is unchanged
#   PYTHON=/path/to/python3.11 ...           interpreter to build the venv with
#
# Idempotent: the lock is installed only when its sha256 differs from the stamp
# written inside .venv/rasa after the last successful install. Needs network
# access to PyPI only (and Debian apt only if python3 lacks venv/ensurepip).
#
# At run time Rasa must get RASA_TELEMETRY_ENABLED=false (no telemetry calls);
# SQLALCHEMY_SILENCE_UBER_WARNING=1 hides a harmless SQLAlchemy 2.0 banner.
set -euo pipefail

log() { printf '[setup_rasa_env] %s\n' "$*"; }
die() { printf '[setup_rasa_env] ERROR: %s\n' "$*" >&2; exit 1; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LOCK="requirements/rasa.txt"
VENV=".venv/rasa"
STAMP="$VENV/.lock.sha256"
INSTALL_LOG="$VENV/setup-install.log"
PYTHON="${PYTHON:-python3}"
# Sdists that have no wheel at all; pure Python, built with the pinned setuptools.
SDIST_ONLY="jieba,docopt,mattermostwrapper,randomname"
# pip check must report exactly these deliberate conflicts (explained in the lock).
EXPECTED_CONFLICTS="rasa 3.6.21 has requirement matplotlib<3.6,>=3.1, but you have matplotlib 3.6.3.
sanic 21.12.2 has requirement multidict<6.0,>=5.0, but you have multidict 6.0.5."

export RASA_TELEMETRY_ENABLED=false
export SQLALCHEMY_SILENCE_UBER_WARNING=1
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_ROOT_USER_ACTION=ignore
export PIP_NO_INPUT=1

[ -f "$LOCK" ] || die "$LOCK not found (run from the repo root)"

# One run at a time (two concurrent pip runs into one venv corrupt it).
mkdir -p .venv
exec 9>".venv/.rasa-setup.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

# --- Debian packages (only if missing) -------------------------------------
APT_UPDATED=0
ensure_debian_pkgs() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "need Debian packages: ${missing[*]} (no apt-get here)"
    local SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing Debian packages: ${missing[*]}"
    if [ "$APT_UPDATED" -eq 0 ]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# --- interpreter ------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found"
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$PYVER" = "3.11" ] || die "$PYTHON is Python $PYVER; the lock is for CPython 3.11 (set PYTHON=...)"
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian's own /usr/bin/python3 ships venv/ensurepip separately.
    ensure_debian_pkgs python3-venv
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || die "$PYTHON has no working venv/ensurepip"
fi
# No Debian build dependencies: the lock contains no compiled sdist (see lock header).

# --- venv -------------------------------------------------------------------
if [ -d "$VENV" ]; then
    if ! "$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' >/dev/null 2>&1; then
        log "$VENV is broken or not Python 3.11: recreating it"
        rm -rf "$VENV"
    fi
fi
if [ ! -d "$VENV" ]; then
    log "creating $VENV with $PYTHON ($("$PYTHON" -c 'import sys; print(sys.version.split()[0])'))"
    "$PYTHON" -m venv "$VENV"
fi

# --- install the lock if it changed -------------------------------------------
WANT="$(sha256sum "$LOCK" | cut -d' ' -f1)"
HAVE="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$WANT" = "$HAVE" ] && [ "${FORCE:-0}" != "1" ]; then
    log "$LOCK unchanged since last successful install (sha256 ${WANT:0:12}); nothing to do"
    exit 0
fi
rm -f "$STAMP"

PIP=("$VENV/bin/python" -m pip)
: > "$INSTALL_LOG"
run_pip() {
    if ! "${PIP[@]}" "$@" >>"$INSTALL_LOG" 2>&1; then
        grep -v "^WARNING: Location '" "$INSTALL_LOG" | tail -n 40 >&2
        die "pip $1 failed; full log: $INSTALL_LOG"
    fi
}

pin_of() { grep -E "^$1==" "$LOCK" | sed -E 's/[[:space:]]*#.*$//' | head -n 1; }
SETUPTOOLS_PIN="$(pin_of setuptools)"
WHEEL_PIN="$(pin_of wheel)"
[ -n "$SETUPTOOLS_PIN" ] && [ -n "$WHEEL_PIN" ] || die "setuptools/wheel pins missing from $LOCK"

log "installing build tools $SETUPTOOLS_PIN $WHEEL_PIN"
run_pip install --no-deps --only-binary :all: "$SETUPTOOLS_PIN" "$WHEEL_PIN"

START=$(date +%s)
log "installing $(grep -cE '^[A-Za-z0-9]' "$LOCK") pinned packages from $LOCK (several minutes; log: $INSTALL_LOG)"
run_pip install --no-deps --ignore-requires-python --no-build-isolation \
    --only-binary :all: --no-binary "$SDIST_ONLY" -r "$LOCK"
log "pip install done in $(( $(date +%s) - START ))s"

# Remove anything installed that the lock does not list (left over from an
# older lock), so that the venv is exactly the lock.
EXTRA="$("$VENV/bin/python" - "$LOCK" <<'PY'
import re, sys
from importlib.metadata import distributions
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = set()
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if line:
        locked.add(norm(line.split("==", 1)[0]))
extra = sorted({d.metadata["Name"] for d in distributions()
                if norm(d.metadata["Name"]) not in locked | {"pip"}})
print(" ".join(extra))
PY
)"
if [ -n "$EXTRA" ]; then
    log "removing packages not in the lock: $EXTRA"
    # shellcheck disable=SC2086
    run_pip uninstall -y $EXTRA
fi

# --- verify -------------------------------------------------------------------
log "verifying (pip check, imports, rasa --version)"
CHECK="$("${PIP[@]}" check 2>&1 | sort || true)"
if [ "$CHECK" != "$(printf '%s\n' "$EXPECTED_CONFLICTS" | sort)" ]; then
    printf '%s\n' "$CHECK" >&2
    die "pip check found conflicts other than the two documented in $LOCK"
fi
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -W ignore -c '
import rasa, rasa_sdk, tensorflow, tensorflow_text, jieba, sklearn, scipy, numpy, matplotlib, sanic
import onnxruntime, tokenizers  # bot/e5_featurizer.py
assert rasa.__version__ == "3.6.21", rasa.__version__
import rasa.nlu.tokenizers.jieba_tokenizer, rasa.nlu.classifiers.diet_classifier, rasa.core.policies.ted_policy
' >>"$INSTALL_LOG" 2>&1 || { tail -n 30 "$INSTALL_LOG" >&2; die "import check failed"; }
VERSION_LINE="$("$VENV/bin/rasa" --version 2>/dev/null | grep -E '^Rasa Version' || true)"
[ -n "$VERSION_LINE" ] || die "$VENV/bin/rasa --version failed"
log "$(echo "$VERSION_LINE" | tr -s ' ')"

echo "$WANT" > "$STAMP"
log "done: $VENV matches $LOCK (stamp ${WANT:0:12})"
log "run Rasa with: RASA_TELEMETRY_ENABLED=false SQLALCHEMY_SILENCE_UBER_WARNING=1 $VENV/bin/rasa ..."
