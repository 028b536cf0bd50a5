#!/usr/bin/env bash
# Installs what reseat needs for one purpose, idempotently, and exports the environment for it.
# Sourced by scripts/demo.sh, scripts/test.sh and scripts/bench.sh (and so by .ci/run):
#   source scripts/bootstrap.sh demo   the Docker demo: Node (>=22.19 <23 or >=24), the npm packages, a Docker Engine, the
#                                      Pulumi CLI with its Node.js language host, the demo's images
#   source scripts/bootstrap.sh k8s    the Kubernetes demo: the above, plus the local cluster's binaries and
#                                      Pulumi's Kubernetes plugin
#   source scripts/bootstrap.sh test   (the default) everything the tests and benches use
# Each missing piece is announced with what it is for and roughly how long it takes on 2 cores; every
# build is cached in $RESEAT_CACHE (~/.cache/reseat), so later runs take seconds.
# The installing runs in a bash process of its own (this file with --install) under `set -euo pipefail`:
# the caller's shell options stay as they were, a failing step does not close an interactive shell,
# and only the exports reach the caller.
# RESEAT_BOOTSTRAP_TIMES=FILE appends "<piece>\t<seconds>" for every piece installed (npm run bench -- first_run).

if [ "${1:-}" != --install ]; then
  RESEAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
  export RESEAT_ROOT RESEAT_CACHE
  # A first argument names the need; without one, `source` hands the script the caller's own arguments,
  # so anything else means the default.
  case "${1:-}" in
    demo | k8s | test) RESEAT_NEED="$1" ;;
    *) RESEAT_NEED="${RESEAT_NEED:-test}" ;;
  esac

  _reseat_bootstrap_started="$(date +%s.%N)"
  # Its stdout goes to stderr: a caller's stdout may be a JSON document (`demo.sh --json`).
  if bash "$RESEAT_ROOT/scripts/bootstrap.sh" --install "$RESEAT_NEED" >&2; then
    # Only the environment reaches the caller: node (the cached one when the machine's is older), the
    # Pulumi CLI and plugins, PULUMI_HOME and the offline settings (scripts/env.sh).
    source "$RESEAT_ROOT/scripts/env.sh"
    if [ -n "${RESEAT_BOOTSTRAP_TIMES:-}" ]; then
      printf 'bootstrap total\t%s\n' "$(awk -v a="$_reseat_bootstrap_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" >>"$RESEAT_BOOTSTRAP_TIMES"
    fi
    unset _reseat_bootstrap_started
  else
    unset _reseat_bootstrap_started
    printf '[bootstrap] failed (see above)\n' >&2
    # Sourced: hand the failure to the caller (a script with `set -e` stops there). Run as a script: exit.
    return 1 2>/dev/null || exit 1
  fi
  # Sourced: back to the caller (run as a script: done).
  return 0 2>/dev/null || exit 0
fi

# ---- bootstrap.sh --install NEED: the installing, in its own process ----
set -euo pipefail
need="$2"
say() { printf '[bootstrap] %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# piece NAME "what it is for" "how long, roughly" COMMAND...: announces, runs and times one install.
piece() {
  local name="$1" what="$2" eta="$3" started
  shift 3
  say "$name — $what; first time only, ~$eta"
  started="$(now)"
  "$@"
  local took
  took="$(since "$started")"
  say "$name: done in ${took}s"
  record "$name" "$took"
}
record() { if [ -n "${RESEAT_BOOTSTRAP_TIMES:-}" ]; then printf '%s\t%s\n' "$1" "$2" >>"$RESEAT_BOOTSTRAP_TIMES"; fi; }
# The Go builds need neither Node nor the npm packages: they run in the background (output in a log) while
# the rest is installed, and are awaited before anything uses them.
background=()
start_piece() { # NAME "what it is for" "how long, roughly" LOG COMMAND...
  local name="$1" what="$2" eta="$3" log="$4"
  shift 4
  say "$name — $what; first time only, ~$eta; building in the background (log: $log)"
  (
    started="$(now)"
    "$@" >"$log" 2>&1 || exit 1
    took="$(since "$started")"
    say "$name: done in ${took}s"
    record "$name (in the background)" "$took"
  ) &
  background+=("$!|$name|$log")
}
await_pieces() {
  local entry pid rest name log waited
  for entry in "${background[@]}"; do
    pid="${entry%%|*}" rest="${entry#*|}"
    name="${rest%%|*}" log="${rest#*|}"
    waited="$(now)"
    if ! wait "$pid"; then
      say "$name failed; the end of $log:"
      tail -n 30 "$log" >&2
      exit 1
    fi
    record "waiting for $name" "$(since "$waited")"
  done
  background=()
}
# A failure elsewhere leaves no build half-way: the background ones finish (and stay cached).
trap 'if [ "${#background[@]}" -gt 0 ]; then say "waiting for the background builds to finish (cached for the next run)"; wait; fi' EXIT
mkdir -p "$RESEAT_CACHE/bin" "$RESEAT_CACHE/build"
cd "$RESEAT_ROOT"

# 0. The Pulumi CLI and its Node.js language host, built from Go modules (no release binary is reachable
#    here): started first, in the background. The tests also run Python and YAML programs: their hosts too.
missing_pulumi="$(bash scripts/build-pulumi.sh missing)"
[ "$need" = test ] || missing_pulumi="$(grep -v -x -e python -e yaml -e sdkgen <<<"$missing_pulumi" || true)"
if [ -n "$missing_pulumi" ] && ! command -v go >/dev/null 2>&1; then
  say "the Pulumi CLI is built from Go modules: install Go (>= 1.24) and re-run"; exit 1
fi
if [[ "$missing_pulumi" == *cli* ]]; then
  start_piece "Pulumi CLI" "runs every deployment (reseat's CLI drives it; plain \`pulumi up\` is it)" "4 min" \
    "$RESEAT_CACHE/build/pulumi-cli.log" bash scripts/build-pulumi.sh cli
fi
if [[ "$missing_pulumi" == *langhost* ]]; then
  start_piece "Pulumi Node.js language host" "runs a Node.js Pulumi program (plain \`pulumi up\`)" "1 min" \
    "$RESEAT_CACHE/build/pulumi-language-nodejs.log" bash scripts/build-pulumi.sh langhost
fi
if [[ "$missing_pulumi" == *python* ]]; then
  start_piece "Pulumi Python language host" "runs a Python Pulumi program (\`runtime: python\`)" "1 min" \
    "$RESEAT_CACHE/build/pulumi-language-python.log" bash scripts/build-pulumi.sh python
fi
if [[ "$missing_pulumi" == *yaml* ]]; then
  start_piece "Pulumi YAML language host" "runs a YAML Pulumi program (\`runtime: yaml\`)" "1 min" \
    "$RESEAT_CACHE/build/pulumi-language-yaml.log" bash scripts/build-pulumi.sh yaml
fi
if [[ "$missing_pulumi" == *sdkgen* ]]; then
  start_piece "Python SDK generator" "generates the plugin package's Python SDK (scripts/plugin.sh; the Python host here cannot)" "2 min" \
    "$RESEAT_CACHE/build/reseat-sdkgen-python.log" bash scripts/build-pulumi.sh sdkgen
fi

# 1. Node.js as package.json's engines says, >=22.19.0 <23 || >=24 (the state library's node:sqlite calls need 22.16
#    on the 22 line and are missing from 23; undici 8, under @kubernetes/client-node, declares >=22.19): Node 24 from
#    the npm registry's `node` package when the machine's does not qualify.
node_supported() { node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit((a === 22 && b >= 19) || a >= 24 ? 0 : 1)' 2>/dev/null; }
if ! node_supported; then
  if [ ! -x "$RESEAT_CACHE/node24/node_modules/node/bin/node" ]; then
    piece "Node.js 24" "the runtime of reseat, Pulumi programs and the workloads (this machine's node is not >=22.19 <23 or >=24)" "30 s" \
      npm install --no-audit --no-fund --silent --prefix "$RESEAT_CACHE/node24" node@24
  fi
  export PATH="$RESEAT_CACHE/node24/node_modules/node/bin:$PATH"
fi

# 2. npm dependencies, reinstalled only when package-lock.json changed.
lock_hash="$(sha256sum package-lock.json | cut -c1-16)"
if [ "$(cat node_modules/.reseat-lock 2>/dev/null || true)" != "$lock_hash" ]; then
  piece "npm packages" "reseat's dependencies (@pulumi/pulumi, dockerode, …) from package-lock.json" "1 min" \
    npm ci --no-audit --no-fund --silent
  echo "$lock_hash" >node_modules/.reseat-lock
fi
# The dynamic-provider plugin ships inside @pulumi/pulumi as a script that finds @pulumi/pulumi from the
# project folder it runs in; next to the CLI it is a bundled plugin for every project (no PATH warning).
cmp -s node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs "$RESEAT_CACHE/bin/pulumi-resource-pulumi-nodejs" ||
  install -m 0755 node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs "$RESEAT_CACHE/bin/"
export PATH="$RESEAT_CACHE/bin:$PATH"

# 3. Docker Engine: start one when none answers.
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      piece "Docker Engine" "where the PEs run (Debian's docker.io)" "1 min" \
        sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io' >&2
    else
      say "no Docker Engine answers and docker.io cannot be installed here: install Docker and start it, then re-run"; exit 1
    fi
  fi
  if [ "$(id -u)" = 0 ]; then
    say "starting dockerd (log: $RESEAT_CACHE/dockerd.log)"
    (setsid dockerd >"$RESEAT_CACHE/dockerd.log" 2>&1 &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  docker info >/dev/null 2>&1 || { say "Docker Engine did not answer; see $RESEAT_CACHE/dockerd.log"; exit 1; }
fi
# The engine's default bridge, should an extra dockerd have deleted it (see scripts/default-bridge.sh).
bash "$RESEAT_ROOT/scripts/default-bridge.sh" heal

# 4. The same environment for the reseat CLI and the plain pulumi CLI (the backend: Pulumi.yaml).
source "$RESEAT_ROOT/scripts/env.sh" 2>/dev/null

# 5. Kubernetes (k8s, test): the local cluster's binaries and Pulumi's Kubernetes resource plugin (for
#    @pulumi/kubernetes), linked into PULUMI_HOME/plugins, where the engine looks for it offline. Go builds
#    too: after the Pulumi ones (two cores).
if [ "$need" != demo ]; then
  await_pieces
  eval "$(bash scripts/build-kubernetes.sh print-env)"
  if [ ! -x "$K8S_BIN/kubelet" ] || [ ! -x "$K8S_BIN/etcd" ] || [ ! -x "$K8S_BIN/kubectl" ] || [ ! -s "$PAUSE_TAR" ] || [ ! -x "$PROVISIONER_BIN" ]; then
    piece "Kubernetes $K8S_VERSION" "the local two-node cluster (etcd, API server, kubelets, …)" "6 min" \
      bash scripts/build-kubernetes.sh cluster >&2
  fi
  if [ ! -x "$PLUGIN_BIN" ]; then
    piece "Pulumi Kubernetes plugin v$PK_PLUGIN_VERSION" "PEs on Kubernetes (@pulumi/kubernetes $PK_PLUGIN_VERSION)" "11 min" \
      bash scripts/build-kubernetes.sh plugin >&2
  fi
  bash scripts/build-kubernetes.sh plugin-install >&2
fi

# 6. What only the tests use (test): OpenTofu with its Docker provider, the power-cut file system, the
#    remote-engine tools. Each script is quick when its piece is built.
if [ "$need" = test ]; then
  if [ ! -x "$RESEAT_CACHE/bin/tofu" ] || [ ! -f "$RESEAT_CACHE/tofurc" ]; then
    piece "OpenTofu + kreuzwerker/docker" "the Terraform flavour's tests (scripts/tf.sh)" "4 min" \
      bash scripts/build-terraform.sh all >/dev/null
  else
    bash scripts/build-terraform.sh all >/dev/null
  fi
  if [ ! -x "$RESEAT_CACHE/bin/reseat-powercut-fs" ]; then
    piece "power-cut file system" "the power-loss tests (FUSE)" "1 min" bash scripts/build-powercut.sh >/dev/null
  else
    bash scripts/build-powercut.sh >/dev/null
  fi
  # The venv Python Pulumi programs run in (the `pulumi` SDK from PyPI); tests activate it per program
  # (VIRTUAL_ENV, its bin/ first on PATH: scripts/python-venv.sh prints how).
  if ! bash scripts/python-venv.sh check; then
    piece "Python venv with the pulumi SDK" "the Python programs' tests (\`runtime: python\`)" "30 s" \
      bash scripts/python-venv.sh >/dev/null
  fi
  if [ ! -x "$(bash scripts/remote-engines.sh registry-bin)" ]; then
    piece "remote-engine tools" "the ssh:// and tcp:// engine and private-registry tests (sshd, htpasswd, a registry)" "2 min" \
      bash scripts/remote-engines.sh install >&2 || say "remote-engine test tools are missing (see above): test/integration/remoteEngines and privateRegistry will fail"
  else
    bash scripts/remote-engines.sh install >&2 || say "remote-engine test tools are missing (see above): test/integration/remoteEngines and privateRegistry will fail"
  fi
fi

# 7. Compile (skipped when the sources are those of the last successful compile), then the images (the
#    demo's only, or all).
source_hash="$(find src packages/state/src packages/state/package.json packages/state/tsconfig.json components stacks bench workload tsconfig.json package-lock.json -type f \( -name '*.ts' -o -name '*.json' \) -not -path '*/node_modules/*' 2>/dev/null | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)"
if [ "$(cat dist/.reseat-source-hash 2>/dev/null || true)" != "$source_hash" ] || [ ! -f dist/src/index.js ] || [ ! -f dist/stacks/demo.js ] || [ ! -f packages/state/dist/index.js ]; then
  compile_started="$(now)"
  npx tsc -b >&2 # the state package (packages/state) first, then reseat: project references
  echo "$source_hash" >dist/.reseat-source-hash
  record "compile (tsc)" "$(since "$compile_started")"
fi
images=all
[ "$need" = test ] || images=demo
if ! bash scripts/images.sh "check-$images" 2>/dev/null; then
  piece "container images ($images)" "the workloads the PEs run, built locally (no registry)" "1 min" \
    bash scripts/images.sh "$images" >&2
fi
await_pieces
say "ready for the $need: $(pulumi version), docker $(docker version -f '{{.Server.Version}}'), node $(node --version)"
