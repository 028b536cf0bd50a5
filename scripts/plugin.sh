#!/usr/bin/env bash
# Builds reseat as a Pulumi plugin package that programs in any Pulumi language use (docs/languages.md):
#   bash scripts/plugin.sh [OUT]          (npm run plugin -- [OUT]; default OUT: $RESEAT_CACHE/plugin)
#     --tarball                           also pack OUT/pulumi-resource-reseat-v<version>-linux-<arch>.tar.gz
# OUT/reseat-v<version>/ holds:
#   pulumi-resource-reseat   the provider plugin (a launcher of node on node_modules/reseat/dist/src/plugin/main.js)
#   schema.json              the package schema (generated from the zod spec by the plugin itself)
#   node_modules/            reseat (this checkout's `npm pack`) and its dependencies, @pulumi/kubernetes included
#   sdk/python/              the generated Python SDK (pip-installable), when the SDK generator is built
#   add-to-project           run in a Pulumi project (Python or YAML): makes the package usable there
# Needs the checkout compiled (bootstrap.sh does that). The dependencies are installed once per lock file
# and kept ($RESEAT_CACHE/plugin-deps/<hash>); each build replaces only reseat itself, so a rebuild takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
tarball=0
out=""
for arg in "$@"; do
  case "$arg" in
    --tarball) tarball=1 ;;
    -*) echo "usage: scripts/plugin.sh [OUT] [--tarball]" >&2; exit 2 ;;
    *) out="$arg" ;;
  esac
done
out="${out:-$RESEAT_CACHE/plugin}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
version="$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")"
pulumi_sdk="$(node -p 'require(process.argv[1]).version' "$ROOT/node_modules/@pulumi/pulumi/package.json")"
pulumi_k8s="$(node -p 'require(process.argv[1]).version' "$ROOT/node_modules/@pulumi/kubernetes/package.json")"
[ -f "$ROOT/dist/src/plugin/main.js" ] || { echo "scripts/plugin.sh: dist/src/plugin/main.js is missing: compile first (npx tsc -b)" >&2; exit 1; }

# 1. The dependencies, once per set of versions (everything reseat needs at run time, but reseat itself).
deps_manifest="$(node -e '
  const p = require(process.argv[1]);
  const deps = { ...p.dependencies, "@pulumi/pulumi": process.argv[2], "@pulumi/kubernetes": process.argv[3] };
  delete deps["@reseat/state"]; // bundled inside reseat
  console.log(JSON.stringify({ name: "reseat-plugin-deps", private: true, dependencies: deps }, null, 2));
' "$ROOT/package.json" "$pulumi_sdk" "$pulumi_k8s")"
deps_key="$(printf '%s' "$deps_manifest" | sha256sum | cut -c1-16)"
deps="$RESEAT_CACHE/plugin-deps/$deps_key"
mkdir -p "$RESEAT_CACHE/plugin-deps"
exec 9>"$deps.lock"
flock 9 # two builds at once (test files run in parallel) install once
if [ ! -f "$deps/.complete" ]; then
  echo "[plugin] installing the plugin's dependencies (once; ~30 s): $deps" >&2
  rm -rf "$deps" && mkdir -p "$deps"
  printf '%s\n' "$deps_manifest" >"$deps/package.json"
  # --ignore-scripts: @pulumi/kubernetes' install script would download its plugin; the engine finds that itself.
  (cd "$deps" && npm install --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >&2)
  touch "$deps/.complete"
fi
flock -u 9

# 2. The package folder: built beside, then swapped in whole (a reader never sees half of it).
dir="$out/reseat-v$version"
stage="$(mktemp -d "$out/.stage-XXXXXX")"
trap 'rm -rf "$stage"' EXIT
cp -al "$deps/node_modules" "$stage/node_modules" 2>/dev/null || cp -a "$deps/node_modules" "$stage/node_modules" # hard links: 200 MB, mostly @pulumi/kubernetes
packed="$(cd "$ROOT" && npm pack --ignore-scripts --silent --pack-destination "$stage" | tail -n 1)"
mkdir -p "$stage/node_modules/reseat"
tar -xzf "$stage/$packed" -C "$stage/node_modules/reseat" --strip-components=1
rm "$stage/$packed"
cat >"$stage/pulumi-resource-reseat" <<'LAUNCHER'
#!/bin/sh
# The reseat provider plugin: Node.js (>= 22.19 on the 22 line, or >= 24) on this folder's copy of reseat.
here="$(dirname "$(readlink -f "$0")")"
version="$(node --version 2>/dev/null || echo none)" # vMAJOR.MINOR.PATCH; `node --version` costs ~10 ms, `node -e` ~40
major="${version#v}"; major="${major%%.*}"; minor="${version#v*.}"; minor="${minor%%.*}"
case "$major" in ''|*[!0-9]*) major=0 ;; esac
case "$minor" in ''|*[!0-9]*) minor=0 ;; esac
if ! { [ "$major" -eq 22 ] && [ "$minor" -ge 19 ]; } && [ "$major" -lt 24 ]; then
  echo "pulumi-resource-reseat: needs Node.js >= 22.19 (22 line) or >= 24 on PATH; found: $version" >&2
  exit 1
fi
exec node "$here/node_modules/reseat/dist/src/plugin/main.js" "$@"
LAUNCHER
chmod 755 "$stage/pulumi-resource-reseat"
"$stage/pulumi-resource-reseat" schema >"$stage/schema.json"
cp "$ROOT/scripts/plugin/add-to-project" "$stage/add-to-project"
chmod 755 "$stage/add-to-project"
if command -v reseat-sdkgen-python >/dev/null 2>&1 || [ -x "$RESEAT_CACHE/bin/reseat-sdkgen-python" ]; then
  gen="$(command -v reseat-sdkgen-python || echo "$RESEAT_CACHE/bin/reseat-sdkgen-python")"
  "$gen" "$stage/schema.json" "$stage/sdk/python" >&2
  printf '# pulumi_reseat\n\nThe Python SDK of reseat %s (processing elements). See reseat'"'"'s docs/languages.md.\n' "$version" >"$stage/sdk/python/README.md"
else
  echo "[plugin] no Python SDK: reseat-sdkgen-python is not built (bash scripts/build-pulumi.sh sdkgen)" >&2
fi
rm -rf "$dir.old"
[ -d "$dir" ] && mv "$dir" "$dir.old"
mv "$stage" "$dir"
rm -rf "$dir.old"
trap - EXIT
if [ "$tarball" = 1 ]; then
  arch="$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')"
  # --warning=no-file-changed, rc 1 accepted: the files are hard links shared with other package folders, and
  # another build linking them meanwhile changes their ctime (not their contents), which GNU tar reports.
  tar --warning=no-file-changed -czf "$out/pulumi-resource-reseat-v$version-linux-$arch.tar.gz" -C "$dir" . || [ $? -eq 1 ]
  echo "$out/pulumi-resource-reseat-v$version-linux-$arch.tar.gz" >&2
fi
echo "$dir"
