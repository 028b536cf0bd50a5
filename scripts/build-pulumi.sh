#!/usr/bin/env bash
# Builds the Pulumi CLI (and, when the Go proxy serves it, the Node.js language host) from Go modules,
# because no Pulumi release binary is reachable here. Cached outside the checkout: CI clones afresh.
set -euo pipefail
PULUMI_VERSION="${PULUMI_VERSION:-v3.274.1}"
CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
export GOFLAGS="${GOFLAGS:-} -mod=mod"

build_cli() {
  [ -x "$BIN/pulumi" ] && "$BIN/pulumi" version 2>/dev/null | grep "$PULUMI_VERSION" >/dev/null && return 0
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
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o "$BIN/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

build_language_host() {
  [ -x "$BIN/pulumi-language-nodejs" ] && return 0
  local dir="$CACHE/build/pulumi-language-nodejs"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module reseat.local/pulumilangnode

go 1.24
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3"
GO
  local commit="${PULUMI_LANGHOST_COMMIT:-}"
  [ -n "$commit" ] || { echo "build-pulumi: no PULUMI_LANGHOST_COMMIT; skipping the language host" >&2; return 1; }
  (cd "$dir" &&
    go get "github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3@$commit" \
      "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" &&
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
      -o "$BIN/pulumi-language-nodejs" github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3)
}

case "${1:-cli}" in
  cli) build_cli ;;
  langhost) build_language_host ;;
esac
