#!/usr/bin/env bash
# npm run bench -- <metric>: bootstraps like the tests, then writes bench/results/<metric>.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$RESEAT_ROOT"
node dist/bench/main.js "$@"
