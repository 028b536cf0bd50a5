#!/usr/bin/env bash
# Installs what reseat needs, idempotently, and exports the environment for it. Sourced by
# scripts/demo.sh and scripts/test.sh (and so by .ci/run). Quick when everything is already there.
set -euo pipefail
RESEAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
export RESEAT_ROOT RESEAT_CACHE
mkdir -p "$RESEAT_CACHE/bin"
say() { printf '[bootstrap] %s\n' "$*" >&2; }

# 1. Node.js >= 22 (@pulumi/pulumi needs it): Node 24 from the npm registry's `node` package.
node_major() { node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || echo 0; }
if [ "$(node_major)" -lt 22 ] 2>/dev/null; then
  if [ ! -x "$RESEAT_CACHE/node24/node_modules/node/bin/node" ]; then
    say "installing Node 24 from the npm registry into $RESEAT_CACHE/node24"
    npm install --no-audit --no-fund --silent --prefix "$RESEAT_CACHE/node24" node@24 >&2
  fi
  export PATH="$RESEAT_CACHE/node24/node_modules/node/bin:$PATH"
fi
say "node $(node --version)"

# 2. npm dependencies, reinstalled only when package-lock.json changed.
cd "$RESEAT_ROOT"
lock_hash="$(sha256sum package-lock.json | cut -c1-16)"
if [ "$(cat node_modules/.reseat-lock 2>/dev/null || true)" != "$lock_hash" ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --silent >&2
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
      say "installing Debian's docker.io"
      apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
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

# 4. Pulumi CLI built from Go modules (cached), offline settings.
if ! command -v go >/dev/null 2>&1 && [ ! -x "$RESEAT_CACHE/bin/pulumi" ]; then
  say "the Pulumi CLI is built from Go modules: install Go (>= 1.24) and re-run"; exit 1
fi
if [ ! -x "$RESEAT_CACHE/bin/pulumi" ]; then say "building the Pulumi CLI from Go modules (first run: a few minutes)"; fi
if [ ! -x "$RESEAT_CACHE/bin/pulumi-language-nodejs" ]; then say "building Pulumi's Node.js language host (plain \`pulumi up\`) from Go modules (~1 minute)"; fi
bash "$RESEAT_ROOT/scripts/build-pulumi.sh" all >&2
bash "$RESEAT_ROOT/scripts/build-terraform.sh" all >/dev/null # OpenTofu + kreuzwerker/docker (Terraform flavour, scripts/tf.sh); cached
bash "$RESEAT_ROOT/scripts/build-powercut.sh" >/dev/null # the power-cut test file system (FUSE); cached
# The same environment for the reseat CLI and the plain pulumi CLI (the backend: Pulumi.yaml).
source "$RESEAT_ROOT/scripts/env.sh"
# Pulumi's Kubernetes resource plugin (for @pulumi/kubernetes), built from Go modules on first use
# (~11 minutes on 2 cores) and linked into PULUMI_HOME/plugins, where the engine looks for it offline.
bash "$RESEAT_ROOT/scripts/build-kubernetes.sh" plugin-install >&2

# 5. What the remote-engine tests start themselves (sshd, htpasswd, a registry built from Go modules); cached.
bash "$RESEAT_ROOT/scripts/remote-engines.sh" install >&2 || say "remote-engine test tools are missing (see above): test/integration/remoteEngines and privateRegistry will fail"

# 6. Compile, then the images.
npx tsc -p tsconfig.json >&2
bash "$RESEAT_ROOT/scripts/images.sh" >&2
say "ready: $(pulumi version), docker $(docker version -f '{{.Server.Version}}')"
