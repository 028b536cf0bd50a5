#!/usr/bin/env bash
# The static checks, quiet when they pass: the layer rules of docs/design.md (dependency-cruiser,
# .dependency-cruiser.cjs), the tests' types (tsc: vitest strips them unchecked), promise misuse
# (typescript-eslint, eslint.config.mjs) and the format (prettier, .prettierrc.json). On a failure it
# prints what broke, under the check's name, and exits 1.
# Run by scripts/test.sh before vitest, and by `npm run lint`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
[ -x "$RESEAT_CACHE/node24/node_modules/node/bin/node" ] && export PATH="$RESEAT_CACHE/node24/node_modules/node/bin:$PATH"


bin=node_modules/.bin
failed=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

# run NAME COMMAND...: runs a check, keeps its output to itself unless it fails.
run() {
  local name="$1"
  shift
  if ! "$@" >"$out" 2>&1; then
    echo "lint: $name failed:" >&2
    cat "$out" >&2
    failed=1
  fi
}

# The source folders that ship or run; tests are linted too (eslint) but not held to the layer rules.
code=(src components stacks bench packages/state/src)

# Imports of @reseat/state resolve through its exports to packages/state/dist: build it when absent.
[ -d packages/state/dist ] || npx tsc -b packages/state >&2

known=()
# A violation tolerated for a while (a baseline file, see docs/development.md) is named
# aloud on every run until it is gone; today there is none (no file).
if [ -f .dependency-cruiser-known-violations.json ]; then
  known=(--ignore-known .dependency-cruiser-known-violations.json)
  echo "lint: $(grep -c '"rule"' .dependency-cruiser-known-violations.json) known layer violation(s) left to remove (.dependency-cruiser-known-violations.json)" >&2
fi
run "layer rules (dependency-cruiser: .dependency-cruiser.cjs)" "$bin/depcruise" "${code[@]}" --config .dependency-cruiser.cjs --output-type err "${known[@]}"
run "test types (tsc -p test/tsconfig.json: vitest runs the tests without checking their types)" "$bin/tsc" -p test/tsconfig.json --noEmit
run "promises (typescript-eslint: eslint.config.mjs)" "$bin/eslint" --max-warnings 0 "${code[@]}" test
run "format (prettier --check; fix with: npx prettier --write .)" "$bin/prettier" --check --log-level warn .
exit "$failed"
