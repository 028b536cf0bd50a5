#!/usr/bin/env bash
# Builds a released reseat from git, as its users got it, for the upgrade test (test/integration/upgrade.test.ts):
#   test/support/buildRelease.sh <commit>
# prints one line of JSON: {"commit","version","dir","tarball","sessionImages":{"v1","v2"}}.
#
# - The release's tree is `git archive <commit>` into a cache OUTSIDE the checkout:
#   ${RESEAT_RELEASE_CACHE:-~/.cache/reseat/releases}/<full sha>/src; then `npm ci`, its own build (what its
#   prepack ran: `tsc -p tsconfig.json` up to 0.4.0, `tsc -b` from 0.5.0 on, which builds packages/state first)
#   and `npm pack` into <full sha>/reseat-<version>.tgz (from 0.5.0 on with @reseat/state bundled).
# - node_modules is shared between releases whose lock files differ only in the root package's version
#   (0.3.0 and 0.4.0): deps-<hash of the lock without that version>/node_modules, symlinked into the tree (the
#   folder is named node_modules so that packages inside still find each other by walking up). A release that is
#   an npm workspace (0.5.0 on: packages/state) keeps its own node_modules in its tree: npm links the workspace
#   there by a relative path (node_modules/@reseat/state -> ../../packages/state), which a shared folder would
#   break, and `npm pack` bundles @reseat/state through that link.
# - The release's own session workload image (its state library writes the volume and the store commits):
#   reseat-upgrade-session:<short sha>-v1 / -v2, from its workload/session/Dockerfile and a context staged as that
#   release staged it: its scripts/stage-session-workload.js (up to 0.4.0: a copy of the compiled library and
#   pg's closure), else its scripts/images.sh's way (0.5.0 on: workload/session plus `npm pack` of packages/state
#   as reseat-state.tgz, node_modules installed by `npm ci --omit=dev` from the workload's lock file); rebuilt only
#   when the tag is missing (images are not in the file cache).
# - Cached by commit (a "done" marker written last), so a second run only checks the marker and the images.
#   One flock over the cache: concurrent test runs (and two releases sharing node_modules) build one at a time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
COMMIT="${1:?usage: buildRelease.sh <commit>}"
CACHE="${RESEAT_RELEASE_CACHE:-$HOME/.cache/reseat/releases}"
NPM_QUIET=(--prefer-offline --no-audit --no-fund --loglevel=error)
export DOCKER_BUILDKIT=0

sha="$(git -C "$ROOT" rev-parse --verify --quiet "$COMMIT^{commit}")" ||
  { echo "buildRelease: commit $COMMIT is not in this clone (a shallow clone? git fetch --unshallow)" >&2; exit 1; }
short="${sha:0:7}"
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

dir="$CACHE/$sha"
if [ ! -f "$dir/done" ]; then
  started=$SECONDS
  rm -rf "$dir"
  mkdir -p "$dir/src"
  git -C "$ROOT" archive "$sha" | tar -x -C "$dir/src"
  # The lock file minus the root package's own version: equal for releases with the same dependencies.
  workspace="$(node -p 'Boolean(require(process.argv[1]).workspaces)' "$dir/src/package.json")"
  if [ "$workspace" = true ]; then
    echo "buildRelease: npm ci for $short (a workspace: its own node_modules)" >&2
    (cd "$dir/src" && npm ci "${NPM_QUIET[@]}" --ignore-scripts >&2)
  else
    deps="$(node -e '
      const lock = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      delete lock.version; if (lock.packages && lock.packages[""]) delete lock.packages[""].version;
      console.log(require("crypto").createHash("sha256").update(JSON.stringify(lock)).digest("hex").slice(0, 16));
    ' "$dir/src/package-lock.json")"
    modules="$CACHE/deps-$deps/node_modules"
    if [ ! -d "$modules" ]; then
      echo "buildRelease: npm ci for $short (dependencies $deps)" >&2
      (cd "$dir/src" && npm ci "${NPM_QUIET[@]}" --ignore-scripts >&2)
      mkdir -p "$CACHE/deps-$deps"
      mv "$dir/src/node_modules" "$modules"
    fi
    ln -s "$modules" "$dir/src/node_modules"
  fi
  echo "buildRelease: building $short" >&2
  # What the release's prepack ran: a workspace builds packages/state first (`tsc -b` follows the references).
  if [ "$workspace" = true ]; then tsc_mode=(-b); else tsc_mode=(-p tsconfig.json); fi
  (cd "$dir/src" && node node_modules/typescript/bin/tsc "${tsc_mode[@]}" >&2)
  (cd "$dir/src" && npm pack --ignore-scripts --silent --pack-destination "$dir" >/dev/null)
  stage="$dir/session-context"
  if [ -f "$dir/src/scripts/stage-session-workload.js" ]; then
    node "$dir/src/scripts/stage-session-workload.js" "$stage" >/dev/null
  else
    # As the release's scripts/images.sh staged it: the workload's files, the state library packed as a user
    # gets it, and the node_modules its lock file installs from that tarball (@reseat/state and pg).
    rm -rf "$stage"
    mkdir -p "$stage"
    for file in Dockerfile server.js package.json package-lock.json; do cp "$dir/src/workload/session/$file" "$stage/$file"; done
    packed="$(cd "$dir/src" && npm pack ./packages/state --ignore-scripts --silent --pack-destination "$stage" | tail -n 1)"
    mv -f "$stage/$packed" "$stage/reseat-state.tgz"
    (cd "$stage" && npm ci --omit=dev --ignore-scripts "${NPM_QUIET[@]}" >&2)
  fi
  echo "buildRelease: $short built in $((SECONDS - started)) s" >&2
  touch "$dir/done"
fi

version="$(node -p 'require(process.argv[1]).version' "$dir/src/package.json")"
tarball="$dir/reseat-$version.tgz"
[ -f "$tarball" ] || { echo "buildRelease: $tarball missing (cache damaged? remove $dir)" >&2; exit 1; }

# The base the current images use (scripts/images.sh): node:24-slim when the engine has it, else the local one.
base=node:24-slim
docker image inspect "$base" >/dev/null 2>&1 || base=reseat-node-base:24
for v in v1 v2; do
  tag="reseat-upgrade-session:$short-$v"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    echo "buildRelease: image $tag" >&2
    built="$(docker build -q --network none -t "$tag" --build-arg "BASE_IMAGE=$base" --build-arg "WORKLOAD_VERSION=$v" "$dir/session-context" 2>&1)" ||
      { echo "$built" >&2; exit 1; }
  fi
done

printf '{"commit":"%s","version":"%s","dir":"%s","tarball":"%s","sessionImages":{"v1":"reseat-upgrade-session:%s-v1","v2":"reseat-upgrade-session:%s-v2"}}\n' \
  "$sha" "$version" "$dir" "$tarball" "$short" "$short"
