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
rm -f .work/vitest-report*.json
status=0
if [ "$#" -gt 0 ]; then
  # Picked files (or vitest options): one vitest process.
  npx vitest run --reporter=default --reporter=json --outputFile=.work/vitest-report.json "$@" || status=$?
else
  # The whole suite in two lanes at once: the files on the Kubernetes cluster (vitest project
  # "kubernetes") beside the rest; each lane runs one file at a time. The cluster lane's lines carry
  # a "[kubernetes]" prefix; both reports are summed below.
  npx vitest run --project kubernetes --reporter=default --reporter=json --outputFile=.work/vitest-report-kubernetes.json 2>&1 \
    | sed -u 's/^/[kubernetes] /' &
  cluster_lane=$!
  npx vitest run --project unit --project integration --reporter=default --reporter=json --outputFile=.work/vitest-report.json || status=$?
  wait "$cluster_lane" || status=1
  # A lane that died before writing its report is a failure even if the other passed.
  [ -f .work/vitest-report-kubernetes.json ] && [ -f .work/vitest-report.json ] || status=1
fi
node -e '
  const fs = require("node:fs");
  const reports = process.argv.slice(1).filter((f) => fs.existsSync(f)).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
  if (!reports.length) process.exit(0);
  const sum = (key) => reports.reduce((n, r) => n + r[key], 0);
  const skipped = sum("numPendingTests") + sum("numTodoTests");
  // A file that failed in a hook or at import fails no test (its tests are skipped): say so, not just "0 failed".
  const broken = reports.flatMap((r) => r.testResults).filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed"));
  console.log(
    `tests: ${sum("numPassedTests")} passed, ${sum("numFailedTests")} failed` +
      (skipped ? `, ${skipped} skipped` : "") +
      (broken.length ? `; ${broken.length} file(s) failed outside a test (a hook or an import): ${broken.map((f) => f.name.replace(process.cwd() + "/", "")).join(", ")}` : ""),
  );
' "$PWD/.work/vitest-report.json" "$PWD/.work/vitest-report-kubernetes.json"
exit "$status"
