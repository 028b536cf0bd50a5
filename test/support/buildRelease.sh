#!/usr/bin/env bash
# Builds a released reseat from git, as its users got it, for the upgrade test (test/integration/upgrade.test.ts):
#   test/support/buildRelease.sh <commit>
# prints one line of JSON: {"commit","version","dir","tarball","sessionImages":{"v1","v2"}}.
#
# - The release's tree is `git archive <commit>` into a cache OUTSIDE the checkout:
#   ${RESEAT_RELEASE_CACHE:-~/.cache/reseat/releases}/<full sha>/src; then `npm ci`, its own build (`tsc -p
#   tsconfig.json`, what its prepack ran) and `npm pack` into <full sha>/reseat-<version>.tgz.
# - node_modules is shared between releases whose lock files differ only in the root package's version
#   (0.3.0 and 0.4.0): deps-<hash of the lock without that version>/node_modules, symlinked into the tree (the
#   folder is named node_modules so that packages inside still find each other by walking up).
# - The release's own session workload image (its state library writes the volume and the store commits):
#   reseat-upgrade-session:<short sha>-v1 / -v2, from its own scripts/stage-session-workload.js and
#   workload/session/Dockerfile; rebuilt only when the tag is missing (images are not in the file cache).
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
  echo "buildRelease: building $short" >&2
  (cd "$dir/src" && node node_modules/typescript/bin/tsc -p tsconfig.json >&2)
  (cd "$dir/src" && npm pack --ignore-scripts --silent --pack-destination "$dir" >/dev/null)
  node "$dir/src/scripts/stage-session-workload.js" "$dir/session-context" >/dev/null
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
