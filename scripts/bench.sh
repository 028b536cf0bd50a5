#!/usr/bin/env bash
# npm run bench -- <metric>: bootstraps like the tests, then writes bench/results/<metric>.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$RESEAT_ROOT"
# A private PostgreSQL on 127.0.0.1:55432 for the postgres store (installed and started when absent).
bash scripts/postgres.sh start >&2
node dist/bench/main.js "$@"
