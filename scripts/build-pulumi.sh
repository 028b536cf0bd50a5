#!/usr/bin/env bash
# Builds the Pulumi CLI and its language hosts (Node.js, Python, YAML) from Go modules,
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

# The Python language host (`runtime: python`), from the same sdk/v3 module and version as the Node.js host.
# It runs the program through a helper script, pulumi-language-python-exec, which it looks for beside its own
# binary ("missing executor" without it): copied from the module, mode 755. The `pulumi` Python SDK itself is
# pip's business (scripts/python-venv.sh).
have_python_host() {
  [ -x "$BIN/pulumi-language-python" ] && [ -x "$BIN/pulumi-language-python-exec" ] &&
    [ "$(cat "$BIN/.pulumi-language-python.version" 2>/dev/null)" = "$LANGHOST_SDK_VERSION" ]
}
build_python_host() {
  have_python_host && return 0
  local dir="$CACHE/build/pulumi-language-python"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module reseat.local/pulumilangpython

go 1.24
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"
GO
  # `go mod tidy`: without it the build stops at "missing go.sum entry" (google.golang.org/grpc/connectivity).
  # The exec helper lives at python/cmd/pulumi-language-python-exec in the module (a Python script).
  (cd "$dir" &&
    go get "github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION" &&
    go mod tidy &&
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$LANGHOST_SDK_VERSION" \
      -o "$BIN/pulumi-language-python.tmp" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python) &&
    install -m 0755 "$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python/cmd/pulumi-language-python-exec" \
      "$BIN/pulumi-language-python-exec.tmp" &&
    mv "$BIN/pulumi-language-python-exec.tmp" "$BIN/pulumi-language-python-exec" &&
    mv "$BIN/pulumi-language-python.tmp" "$BIN/pulumi-language-python" &&
    echo "$LANGHOST_SDK_VERSION" >"$BIN/.pulumi-language-python.version"
}

# The YAML language host (`runtime: yaml`): its own module, github.com/pulumi/pulumi-yaml.
PULUMI_YAML_VERSION="${PULUMI_YAML_VERSION:-v1.25.0}"
have_yaml_host() { [ -x "$BIN/pulumi-language-yaml" ] && [ "$(cat "$BIN/.pulumi-language-yaml.version" 2>/dev/null)" = "$PULUMI_YAML_VERSION" ]; }
build_yaml_host() {
  have_yaml_host && return 0
  local dir="$CACHE/build/pulumi-language-yaml"
  mkdir -p "$dir"
  cat >"$dir/go.mod" <<MOD
module reseat.local/pulumilangyaml

go 1.24
MOD
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"
GO
  (cd "$dir" &&
    go get "github.com/pulumi/pulumi-yaml@$PULUMI_YAML_VERSION" &&
    go mod tidy &&
    go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$PULUMI_YAML_VERSION" \
      -o "$BIN/pulumi-language-yaml.tmp" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml) &&
    mv "$BIN/pulumi-language-yaml.tmp" "$BIN/pulumi-language-yaml" &&
    echo "$PULUMI_YAML_VERSION" >"$BIN/.pulumi-language-yaml.version"
}

# reseat-sdkgen-python: the package's Python SDK from its schema.json with the CLI's own codegen (scripts/sdkgen;
# the Python host above predates the GeneratePackage RPC that `pulumi package gen-sdk` calls). Its go.mod pins
# pkg/v3 and sdk/v3, so the marker is a hash of main.go and go.mod: it rebuilds when either changes. Built in a
# copy under $CACHE/build, so that -mod=mod never writes into the checkout.
SDKGEN_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sdkgen"
sdkgen_hash() { cat "$SDKGEN_SRC/main.go" "$SDKGEN_SRC/go.mod" | sha256sum | cut -d' ' -f1; }
have_sdkgen() { [ -x "$BIN/reseat-sdkgen-python" ] && [ "$(cat "$BIN/.reseat-sdkgen-python.version" 2>/dev/null)" = "$(sdkgen_hash)" ]; }
build_sdkgen() {
  have_sdkgen && return 0
  local dir="$CACHE/build/reseat-sdkgen-python" hash
  hash="$(sdkgen_hash)"
  mkdir -p "$dir"
  cp "$SDKGEN_SRC/main.go" "$SDKGEN_SRC/go.mod" "$SDKGEN_SRC/go.sum" "$dir/"
  (cd "$dir" &&
    go build -trimpath -tags osusergo,grpcnotrace -ldflags "-s -w" -o "$BIN/reseat-sdkgen-python.tmp" .) &&
    mv "$BIN/reseat-sdkgen-python.tmp" "$BIN/reseat-sdkgen-python" &&
    echo "$hash" >"$BIN/.reseat-sdkgen-python.version"
}

case "${1:-cli}" in
  cli) build_cli ;;
  langhost) build_language_host ;;
  python) build_python_host ;;
  yaml) build_yaml_host ;;
  sdkgen) build_sdkgen ;;
  all) build_cli && build_language_host && build_python_host && build_yaml_host && build_sdkgen ;;
  # Prints what is not built yet at the wanted version (cli, langhost, python, yaml, sdkgen), one a line; builds nothing.
  missing)
    have_cli || echo cli
    have_language_host || echo langhost
    have_python_host || echo python
    have_yaml_host || echo yaml
    have_sdkgen || echo sdkgen
    ;;
  *) echo "usage: $0 [cli|langhost|python|yaml|sdkgen|all|missing]" >&2; exit 2 ;;
esac
