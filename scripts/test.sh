#!/usr/bin/env bash
# The test command: installs what is missing, then runs the unit and integration tests (real Pulumi
# CLI, real Docker Engine). Ends with one line "N passed, N failed".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$RESEAT_ROOT"
# The static checks first (scripts/lint.sh: layer rules, promise lint, format), failing the command on their
# own. Skipped when the arguments pick test files (iterating on a few), unless RESEAT_LINT=1; RESEAT_LINT=0 skips.
lint="${RESEAT_LINT:-1}"
if [ -z "${RESEAT_LINT:-}" ]; then for arg in "$@"; do case "$arg" in *.ts | test/*) lint=0 ;; esac; done; fi
if [ "$lint" = 1 ] && ! bash scripts/lint.sh; then
  echo "tests: not run: the static checks failed (above; run them alone with: npm run lint)" >&2
  exit 1
fi
# A private PostgreSQL on 127.0.0.1:55432 for the postgres store (installed and started when absent).
bash scripts/postgres.sh start >&2
# The local two-node Kubernetes cluster (built on first use, ~25 minutes on 2 cores; then seconds).
bash scripts/cluster.sh up >&2
mkdir -p .work
report=".work/vitest-report.json"
rm -f "$report"
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$report" "$@" || status=$?
if [ -f "$report" ]; then
  node -e '
    const r = require(process.argv[1]);
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""));
  ' "$PWD/$report"
fi
exit "$status"
