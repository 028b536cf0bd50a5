#!/usr/bin/env bash
# Builds the Pulumi CLI and the Node.js language host from Go modules,
# because no Pulumi release binary is reachable here. Cached outside the checkout: CI clones afresh.
# Stripped (-s -w): no debugger reads them, and the link of the 170 MB CLI is shorter without DWARF.
set -euo pipefail
PULUMI_VERSION="${PULUMI_VERSION:-v3.274.1}"
CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
export GOFLAGS="${GOFLAGS:-} -mod=mod"

have_cli() { [ -x "$BIN/pulumi" ] && "$BIN/pulumi" version 2>/dev/null | grep "$PULUMI_VERSION" >/dev/null; }
build_cli() {
  have_cli && return 0
  local dir="$CACHE/build/pulumi-cli"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module reseat.local/pulumicli

go 1.24
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GO
  (cd "$dir" &&
    go get "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" &&
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o "$BIN/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) &&
    mv "$BIN/pulumi.tmp" "$BIN/pulumi" # an interrupted build leaves no half-written CLI
}

# The official Node.js language host (`pulumi up` on a Node.js project). Later SDK versions moved it
# to its own module (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3), which the Go
# module proxy refuses; v3.68.0 of the sdk/v3 module still carries the package, and the host speaks
# the same gRPC protocol to the current CLI and @pulumi/pulumi (it only starts `node` on the program).
LANGHOST_SDK_VERSION="${LANGHOST_SDK_VERSION:-v3.68.0}"
have_language_host() { [ -x "$BIN/pulumi-language-nodejs" ] && [ "$(cat "$BIN/.pulumi-language-nodejs.version" 2>/dev/null)" = "$LANGHOST_SDK_VERSION" ]; }
build_language_host() {
  have_language_host && return 0
  local dir="$CACHE/build/pulumi-language-nodejs"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module reseat.local/pulumilangnode

go 1.24
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
GO
  (cd "$dir" &&
    go get "github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION" &&
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_SDK_VERSION" \
      -o "$BIN/pulumi-language-nodejs.tmp" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs) &&
    mv "$BIN/pulumi-language-nodejs.tmp" "$BIN/pulumi-language-nodejs" &&
    echo "$LANGHOST_SDK_VERSION" >"$BIN/.pulumi-language-nodejs.version"
}

case "${1:-cli}" in
  cli) build_cli ;;
  langhost) build_language_host ;;
  all) build_cli && build_language_host ;;
  # Prints what is not built yet at the wanted version (cli, langhost), one a line; builds nothing.
  missing) have_cli || echo cli; have_language_host || echo langhost ;;
  *) echo "usage: $0 [cli|langhost|all|missing]" >&2; exit 2 ;;
esac
