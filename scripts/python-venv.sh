#!/usr/bin/env bash
# Creates the Python venv that Python Pulumi programs run in: $RESEAT_CACHE/python/venv with the `pulumi`
# SDK (pinned: the version PyPI serves here) plus setuptools and wheel (generated SDKs are installed from a
# local folder with pip, which builds them). The host itself is scripts/build-pulumi.sh python.
# Idempotent: a marker inside the venv names the pin and the interpreter; when it matches, nothing runs.
# Written last, so an interrupted install is redone from scratch on the next run (a venv is not movable,
# so it cannot be built under a .tmp name and renamed).
#   bash scripts/python-venv.sh          create or check the venv, then print how to use it
#   bash scripts/python-venv.sh path     print the venv's folder only
#   bash scripts/python-venv.sh check    exit 0 when the venv is ready at the pin, 1 otherwise (installs nothing)
set -euo pipefail
PULUMI_PYTHON_SDK_VERSION="${PULUMI_PYTHON_SDK_VERSION:-3.272.0}"
CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
VENV="$CACHE/python/venv"
PYTHON="${RESEAT_PYTHON:-python3}"

if [ "${1:-}" = path ]; then echo "$VENV"; exit 0; fi

command -v "$PYTHON" >/dev/null 2>&1 || { echo "python-venv: no $PYTHON on PATH (set RESEAT_PYTHON to a Python >= 3.9)" >&2; exit 1; }
# The interpreter's full version is part of the marker: a venv points at the interpreter it was made from.
python_version="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
wanted="pulumi==$PULUMI_PYTHON_SDK_VERSION python=$python_version +setuptools +wheel"
marker="$VENV/.reseat-venv"
ready() { [ "$(cat "$marker" 2>/dev/null || true)" = "$wanted" ] && [ -x "$VENV/bin/python" ]; }
if [ "${1:-}" = check ]; then ready; exit; fi

if ! ready; then
  echo "python-venv: creating $VENV ($wanted)" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  # --upgrade: the setuptools a venv starts with can be years old (65.5 with Python 3.11).
  "$VENV/bin/python" -m pip install --quiet --upgrade pip setuptools wheel
  "$VENV/bin/python" -m pip install --quiet "pulumi==$PULUMI_PYTHON_SDK_VERSION"
  "$VENV/bin/python" -c 'import pulumi, pulumi.runtime' # the SDK imports (grpcio, protobuf wheels fit)
  echo "$wanted" >"$marker"
fi

# How a Python program runs under the CLI (measured with CLI v3.274.1 and pulumi-language-python v3.68.0).
cat <<USAGE
# Python Pulumi programs: Pulumi.yaml with plain "runtime: python". Run pulumi with the venv active:
#   export VIRTUAL_ENV=$VENV
#   export PATH=$VENV/bin:$CACHE/bin:\$PATH
# What counts is the venv's bin/ first on PATH: the host runs the first python3 (or python) it finds there.
# (PULUMI_PYTHON_CMD=$VENV/bin/python works too, but then pip on PATH is not the venv's.)
# The runtime option "virtualenv: <dir>" does NOT work here: this CLI no longer passes it to the v3.68.0
# host as a -virtualenv flag, so the host runs the machine's python3 ("No module named 'pulumi'").
# $CACHE/bin holds pulumi, pulumi-language-python and pulumi-language-python-exec (scripts/build-pulumi.sh python).
USAGE
