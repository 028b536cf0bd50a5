#!/usr/bin/env bash
# The Terraform flavour, end to end: synthesize the cdktf stack, then OpenTofu init/plan/apply/destroy
# in cdktf.out/stacks/<stack>/ against the local Docker Engine. No registry is contacted: tofu and the
# kreuzwerker/docker provider come from scripts/build-terraform.sh (built once, cached, cheap to re-check)
# and TF_CLI_CONFIG_FILE points tofu at that local mirror only.
#
# Usage: scripts/tf.sh [--stack NAME] [--config FILE] [--out DIR] [--state FILE] [--no-synth] COMMAND [ARGS...]
#
#   synth                    compile if needed, synthesize cdktf.out/stacks/<stack>/cdk.tf.json
#   init                     synth + tofu init (providers from the local mirror)
#   plan [ARGS]              init + status file + tofu plan -out=tfplan ARGS
#   apply [ARGS]             init + status file + tofu apply -auto-approve ARGS, then `status`
#   status                   status file + tofu apply -refresh-only (outputs get fresh commit figures)
#   output [ARGS]            tofu output ARGS (default -json)
#   destroy [--delete-volumes]
#                            the tear-down: forget the state volumes (tofu state rm; they stay on the
#                            engine with their data), then tofu destroy the rest (executables, image
#                            records). --delete-volumes also removes those volumes: their data is gone.
#   tofu ARGS                any tofu command in the stack's folder with the same environment
#                            (e.g. `scripts/tf.sh tofu destroy`: refused while prevent_destroy holds)
#
# Defaults (or env): --stack local (RESEAT_TF_STACK), --config stacks/terraform/stack.<stack>.json
# (RESEAT_TF_CONFIG), --out cdktf.out (RESEAT_TF_OUT), --state stacks/terraform/terraform.<stack>.tfstate
# (RESEAT_TF_STATE). --no-synth (RESEAT_TF_NO_SYNTH=1): use what is already synthesized in
# <out>/stacks/<stack> (e.g. by `cdktf synth`, or by a test that synthesizes in-process).
#
# The status file: before plan and apply, `reseat status --json` is written to
# cdktf.out/stacks/<stack>/reseat-status.json; the stack reads it with file()/jsondecode() into each
# PE's output (generation, lastCommit, commitLagMs, ...). See components/terraform/status.ts for why
# (hashicorp/external cannot be built here).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=env.sh
source "$ROOT/scripts/env.sh"
say() { printf '[tf] %s\n' "$*" >&2; }

STACK="${RESEAT_TF_STACK:-local}"
CONFIG="${RESEAT_TF_CONFIG:-}"
OUT="${RESEAT_TF_OUT:-$ROOT/cdktf.out}"
STATE="${RESEAT_TF_STATE:-}"
NO_SYNTH="${RESEAT_TF_NO_SYNTH:-0}"
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) STACK="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --state) STATE="$2"; shift 2 ;;
    --no-synth) NO_SYNTH=1; shift ;;
    --) shift; break ;;
    -*) say "unknown option $1"; exit 2 ;;
    *) break ;;
  esac
done
COMMAND="${1:-}"
[ -n "$COMMAND" ] || { sed -n '7,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
shift
OUT="$(mkdir -p "$OUT" && cd "$OUT" && pwd)"
STACK_DIR="$OUT/stacks/$STACK"
STATUS_FILE="$STACK_DIR/reseat-status.json"

# tofu and the provider mirror, built once (scripts/build-terraform.sh skips what is already built).
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
ensure_tofu() {
  local log="$RESEAT_CACHE/build-terraform.log"
  mkdir -p "$RESEAT_CACHE"
  if ! bash "$ROOT/scripts/build-terraform.sh" all >/dev/null 2>"$log"; then
    cat "$log" >&2
    say "scripts/build-terraform.sh failed (log above)"
    exit 1
  fi
  export TF_CLI_CONFIG_FILE="${RESEAT_TOFURC:-$RESEAT_CACHE/tofurc}"
  export PATH="$RESEAT_CACHE/bin:$PATH"
  export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
}

# Compiles when a source the synth uses is newer than its compiled entry point. With --no-synth only
# the reseat CLI (for the status file) is needed, and only its presence is checked.
ensure_compiled() {
  local entry="$ROOT/dist/stacks/terraform/main.js"
  if [ ! -f "$entry" ] || [ ! -f "$ROOT/dist/src/cli/main.js" ] ||
    { [ "$NO_SYNTH" != 1 ] && [ -n "$(find "$ROOT/src" "$ROOT/packages/state/src" "$ROOT/components/terraform" "$ROOT/stacks/terraform" -name '*.ts' -newer "$entry" -print -quit)" ]; }; then
    say "compiling (npx tsc -b: the state package, then reseat)"
    (cd "$ROOT" && npx tsc -b) >&2
  fi
}

synth() {
  ensure_compiled
  if [ "$NO_SYNTH" = 1 ]; then
    [ -f "$STACK_DIR/cdk.tf.json" ] || { say "--no-synth: nothing synthesized in $STACK_DIR"; exit 1; }
    return 0
  fi
  local args=(--stack "$STACK" --out "$OUT")
  [ -n "$CONFIG" ] && args+=(--config "$CONFIG")
  [ -n "$STATE" ] && args+=(--state "$STATE")
  NODE_OPTIONS="${NODE_OPTIONS:-} --no-deprecation" node "$ROOT/dist/stacks/terraform/main.js" "${args[@]}"
}

tf() { (cd "$STACK_DIR" && tofu "$@"); }

init() {
  synth
  ensure_tofu
  tf init -input=false -no-color >&2
}

# `reseat status --json` into the stack's folder, for the outputs (see the header).
write_status() {
  # The file holds the rows (`processingElements` of the command's JSON document).
  if NODE_OPTIONS="${NODE_OPTIONS:-} --no-deprecation" node "$ROOT/dist/src/cli/main.js" status --json >"$STATUS_FILE.tmp" &&
    node -e 'const fs = require("fs"), f = process.argv[1]; fs.writeFileSync(f, JSON.stringify(JSON.parse(fs.readFileSync(f, "utf8")).processingElements, null, 2))' "$STATUS_FILE.tmp"; then
    mv -f "$STATUS_FILE.tmp" "$STATUS_FILE"
  else
    rm -f "$STATUS_FILE.tmp" "$STATUS_FILE"
    say "reseat status failed: the status outputs will be null"
  fi
}

refresh_status() {
  write_status
  tf apply -refresh-only -auto-approve -input=false -no-color >&2
}

case "$COMMAND" in
  synth) synth ;;
  init) init ;;
  plan)
    init
    write_status
    tf plan -input=false -no-color -out=tfplan "$@"
    ;;
  apply)
    init
    write_status
    tf apply -auto-approve -input=false -no-color "$@"
    refresh_status
    tf output -json
    ;;
  status)
    ensure_compiled
    ensure_tofu
    refresh_status
    tf output -json
    ;;
  output)
    ensure_tofu
    if [ $# -eq 0 ]; then tf output -json; else tf output "$@"; fi
    ;;
  destroy)
    delete_volumes=0
    for arg in "$@"; do
      case "$arg" in
        --delete-volumes) delete_volumes=1 ;;
        *) say "destroy: unknown argument $arg"; exit 2 ;;
      esac
    done
    init
    # The state volumes: "docker_volume.<address> <name>" per line.
    volumes="$(tf show -json | node -e '
      let text = ""; process.stdin.on("data", (d) => (text += d)).on("end", () => {
        const doc = text.trim() ? JSON.parse(text) : {};
        const walk = (m) => [...(m?.resources ?? []), ...(m?.child_modules ?? []).flatMap(walk)];
        for (const r of walk(doc.values?.root_module)) if (r.type === "docker_volume") console.log(`${r.address} ${r.values.name}`);
      });')"
    if [ -n "$volumes" ]; then
      # Forgetting the volumes is what lifts prevent_destroy for this run without touching the data.
      tf state rm $(printf '%s\n' "$volumes" | cut -d' ' -f1) >&2
    fi
    tf destroy -auto-approve -input=false -no-color >&2
    if [ -n "$volumes" ]; then
      if [ "$delete_volumes" = 1 ]; then
        for name in $(printf '%s\n' "$volumes" | cut -d' ' -f2); do
          docker volume rm "$name" >/dev/null && say "deleted volume $name and its data"
        done
      else
        for name in $(printf '%s\n' "$volumes" | cut -d' ' -f2); do
          say "kept volume $name (with its data); the next apply adopts it; to delete it and its data: docker volume rm $name (or, next time, scripts/tf.sh destroy --delete-volumes)"
        done
      fi
    fi
    rm -f "$STATUS_FILE"
    ;;
  tofu)
    ensure_tofu
    tf "$@"
    ;;
  *)
    say "unknown command $COMMAND"
    exit 2
    ;;
esac
