#!/usr/bin/env bash
# Builds the container images reseat's demo and tests run, locally (no registry is needed).
# The base is node:24-slim when the engine has it; otherwise a minimal Node 24 base is assembled from
# this machine's Node binary and its shared libraries with `docker import`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DOCKER_BUILDKIT=0

base_image() {
  if docker image inspect node:24-slim >/dev/null 2>&1; then echo node:24-slim; return; fi
  local local_base="reseat-node-base:24"
  if ! docker image inspect "$local_base" >/dev/null 2>&1; then
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


BASE="$(base_image)"
# Rebuild when the workload's sources change: the tag carries no content hash, so compare a label.
demo_hash="$(cat "$ROOT/workload/demo/"* | sha256sum | cut -c1-16)"
for version in v1 v2; do
  tag="reseat-demo-workload:$version"
  have="$(docker image inspect -f '{{ index .Config.Labels "io.reseat.source-hash" }}' "$tag" 2>/dev/null || true)"
  if [ "$have" != "$demo_hash" ]; then
    docker build -q -t "$tag" --label "io.reseat.source-hash=$demo_hash" --build-arg "BASE_IMAGE=$BASE" \
      --build-arg "WORKLOAD_VERSION=$version" "$ROOT/workload/demo" >/dev/null
  fi
done

# The session-context service: its context is staged (state library + pg), then built the same way.
stage="$ROOT/.work/images/session"
node "$ROOT/scripts/stage-session-workload.js" "$stage" >/dev/null
session_hash="$(cd "$stage" && find . -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)"
for version in v1 v2; do
  tag="reseat-session-workload:$version"
  have="$(docker image inspect -f '{{ index .Config.Labels "io.reseat.source-hash" }}' "$tag" 2>/dev/null || true)"
  if [ "$have" != "$session_hash" ]; then
    docker build -q -t "$tag" --label "io.reseat.source-hash=$session_hash" --build-arg "BASE_IMAGE=$BASE" \
      --build-arg "WORKLOAD_VERSION=$version" "$stage" >/dev/null
  fi
done
echo "images: base $BASE; reseat-demo-workload:v1, :v2; reseat-session-workload:v1, :v2"
