#!/usr/bin/env bash
# Builds the container images reseat's demo and tests run, locally (no registry is needed).
# The base is node:24-slim when the engine has it; otherwise a minimal Node 24 base is assembled from
# this machine's Node binary and its shared libraries with `docker import`.
#   scripts/images.sh [all]        every image (the tests')
#   scripts/images.sh demo         only what scripts/demo.sh runs: reseat-session-workload:v1, :v2
#   scripts/images.sh check-demo   builds nothing; exits 1 when `demo` would build something (check-all: `all`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOCKER_BUILDKIT=0
# RUN steps need no network: `--network none` (they then work even when the engine has no default bridge).
WHAT="${1:-all}"
CHECK=""
case "$WHAT" in check-*) CHECK=1; WHAT="${WHAT#check-}" ;; esac
case "$WHAT" in all|demo) ;; *) echo "usage: $0 [all|demo|check-all|check-demo]" >&2; exit 2 ;; esac

base_image() {
  if docker image inspect node:24-slim >/dev/null 2>&1; then echo node:24-slim; return; fi
  local local_base="reseat-node-base:24"
  if ! docker image inspect "$local_base" >/dev/null 2>&1; then
    [ -z "$CHECK" ] || exit 1
    local node_bin rootfs
    node_bin="$(command -v node)"
    case "$(node --version)" in v24.*) ;; *) echo "images.sh: need Node 24 on PATH to assemble $local_base" >&2; exit 1 ;; esac
    rootfs="$(mktemp -d)"
    mkdir -p "$rootfs/usr/local/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/app"
    chmod 1777 "$rootfs/tmp"
    cp "$node_bin" "$rootfs/usr/local/bin/node"
    # The dynamic loader and every library node links against, at their own paths.
    for lib in $(ldd "$node_bin" | grep -o '/[^ ]*'); do
      mkdir -p "$rootfs$(dirname "$lib")"
      cp -L "$lib" "$rootfs$lib"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnode:x:1000:\n' >"$rootfs/etc/group"
    tar -C "$rootfs" -c . | docker import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' -c 'WORKDIR /app' - "$local_base" >/dev/null
    rm -rf "$rootfs"
  fi
  echo "$local_base"
}


# One images.sh at a time (bootstraps of concurrent test runs): the staged session context is shared.
mkdir -p "$ROOT/.work/images"
exec 9>"$ROOT/.work/images/.lock"
flock 9

BASE="$(base_image)"
# Builds <name>:v1 and :v2 from a context, only when the context changed: the tags carry no content
# hash, so a label on the image records the hash of what it was built from.
build_versions() { # name context-dir [hash]
  local name="$1" context="$2" hash="${3:-}" tag have
  [ -n "$hash" ] || hash="$(cd "$context" && find . -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)"
  for version in v1 v2; do
    tag="$name:$version"
    have="$(docker image inspect -f '{{ index .Config.Labels "io.reseat.source-hash" }}' "$tag" 2>/dev/null || true)"
    if [ "$have" != "$hash" ]; then
      [ -z "$CHECK" ] || exit 1
      docker build -q --network none -t "$tag" --label "io.reseat.source-hash=$hash" --build-arg "BASE_IMAGE=$BASE" \
        --build-arg "WORKLOAD_VERSION=$version" "$context" >/dev/null
    fi
  done
}

# The session-context service (the demo's workload: the state library, commits). Its context is
# workload/session plus the state library packed as a user gets it (`npm pack` of packages/state, compiled by
# the bootstrap); its node_modules is what `npm ci --omit=dev` installs from the workload's own lock file:
# @reseat/state from that tarball, and pg. The image's hash is that of these inputs: npm ci runs when they
# changed, a build when the image was built from others.
stage="$ROOT/.work/images/session"
mkdir -p "$stage"
rm -rf "$stage/state" # what the staging of reseat 0.4 left (a copied library)
for file in Dockerfile server.js package.json package-lock.json; do cp "$ROOT/workload/session/$file" "$stage/$file"; done
[ -f "$ROOT/packages/state/dist/index.js" ] || { echo "images.sh: packages/state is not compiled (npx tsc -b)" >&2; exit 1; }
packed="$(cd "$ROOT" && npm pack ./packages/state --ignore-scripts --silent --pack-destination "$stage" | tail -n 1)"
mv -f "$stage/$packed" "$stage/reseat-state.tgz"
session_hash="$(cd "$stage" && cat Dockerfile server.js package.json package-lock.json reseat-state.tgz | sha256sum | cut -c1-16)"
install_session_modules() {
  [ "$(cat "$stage/.modules-inputs" 2>/dev/null || true)" != "$session_hash" ] || [ ! -d "$stage/node_modules" ] || return 0
  (cd "$stage" && rm -rf node_modules && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$session_hash" >"$stage/.modules-inputs"
}
[ -n "$CHECK" ] || install_session_modules # also what bench/resumeTime.ts runs (the staged server.js)
build_versions reseat-session-workload "$stage" "$session_hash"
if [ "$WHAT" = demo ]; then
  [ -n "$CHECK" ] || echo "images: base $BASE; reseat-session-workload:v1, :v2"
  exit 0
fi
build_versions reseat-demo-workload "$ROOT/workload/demo"
# An image that exists but exits at start (exit code 3): what a bad release looks like, for the revert tests.
if ! docker image inspect reseat-crash-at-start:1 >/dev/null 2>&1; then
  [ -z "$CHECK" ] || exit 1
  printf 'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCMD ["node", "-e", "console.error(\\"crashing at start (test image)\\"); process.exit(3)"]\n' |
    docker build -q --network none -t reseat-crash-at-start:1 --build-arg "BASE_IMAGE=$BASE" - >/dev/null
fi
[ -n "$CHECK" ] || echo "images: base $BASE; reseat-demo-workload:v1, :v2; reseat-session-workload:v1, :v2; reseat-crash-at-start:1"
