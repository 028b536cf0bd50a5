#!/usr/bin/env bash
# Builds the tests' power-cut file system (test/support/powercut, Go + go-fuse from the Go module proxy) into
# $RESEAT_CACHE/bin/reseat-powercut-fs, again only when its sources changed. Prints the binary's path.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
SRC="$ROOT/test/support/powercut"
BIN="$RESEAT_CACHE/bin/reseat-powercut-fs"
hash="$(cd "$SRC" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)"
if [ ! -x "$BIN" ] || [ "$(cat "$BIN.source-hash" 2>/dev/null || true)" != "$hash" ]; then
  command -v go >/dev/null 2>&1 || { echo "build-powercut.sh: Go (>= 1.24) is needed to build the power-cut test file system" >&2; exit 1; }
  mkdir -p "$(dirname "$BIN")"
  (cd "$SRC" && GOFLAGS=-mod=readonly go build -trimpath -o "$BIN.tmp" .)
  mv "$BIN.tmp" "$BIN"
  echo "$hash" >"$BIN.source-hash"
fi
echo "$BIN"
