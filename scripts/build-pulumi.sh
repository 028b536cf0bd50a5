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

# Builds one Go program of a published module into $BIN/<name>.tmp, in a wrapper module of its own under
# $CACHE/build/<name> (a tools.go importing the package, `go get` of the modules, optional `go mod tidy`).
#   go_program NAME PACKAGE VERSION_VARIABLE VERSION TIDY MODULE@VERSION...
# The caller moves the .tmp into place: an interrupted build leaves nothing half-written under the real name.
go_program() {
  local name="$1" package="$2" version_variable="$3" version="$4" tidy="$5" dir="$CACHE/build/$1"
  shift 5
  mkdir -p "$dir"
  printf 'module reseat.local/%s\n\ngo 1.24\n' "${name//-/}" >"$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >"$dir/tools.go"
  (cd "$dir" &&
    go get "$@" &&
    if [ "$tidy" = tidy ]; then go mod tidy; fi &&
    go build -trimpath -tags osusergo,grpcnotrace -ldflags "-s -w -X $version_variable=$version" -o "$BIN/$name.tmp" "$package")
}
SDK_VERSION_VARIABLE=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version

have_cli() { [ -x "$BIN/pulumi" ] && "$BIN/pulumi" version 2>/dev/null | grep "$PULUMI_VERSION" >/dev/null; }
build_cli() {
  have_cli && return 0
  go_program pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$SDK_VERSION_VARIABLE" "$PULUMI_VERSION" no-tidy \
    "github.com/pulumi/pulumi/pkg/v3@$PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" &&
    mv "$BIN/pulumi.tmp" "$BIN/pulumi"
}

# The official Node.js language host (`pulumi up` on a Node.js project). Later SDK versions moved it
# to its own module (github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3), which the Go
# module proxy refuses; v3.68.0 of the sdk/v3 module still carries the package, and the host speaks
# the same gRPC protocol to the current CLI and @pulumi/pulumi (it only starts `node` on the program).
LANGHOST_SDK_VERSION="${LANGHOST_SDK_VERSION:-v3.68.0}"
have_language_host() { [ -x "$BIN/pulumi-language-nodejs" ] && [ "$(cat "$BIN/.pulumi-language-nodejs.version" 2>/dev/null)" = "$LANGHOST_SDK_VERSION" ]; }
build_language_host() {
  have_language_host && return 0
  go_program pulumi-language-nodejs github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
    "$SDK_VERSION_VARIABLE" "$LANGHOST_SDK_VERSION" no-tidy "github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION" &&
    mv "$BIN/pulumi-language-nodejs.tmp" "$BIN/pulumi-language-nodejs" &&
    echo "$LANGHOST_SDK_VERSION" >"$BIN/.pulumi-language-nodejs.version"
}

# The Python language host (`runtime: python`), from the same sdk/v3 module and version as the Node.js host.
# It runs the program through a helper script, pulumi-language-python-exec, which it looks for beside its own
# binary ("missing executor" without it): copied from the module (python/cmd/), mode 755. `go mod tidy`:
# without it the build stops at "missing go.sum entry" (google.golang.org/grpc/connectivity). The `pulumi`
# Python SDK itself is pip's business (scripts/python-venv.sh).
have_python_host() {
  [ -x "$BIN/pulumi-language-python" ] && [ -x "$BIN/pulumi-language-python-exec" ] &&
    [ "$(cat "$BIN/.pulumi-language-python.version" 2>/dev/null)" = "$LANGHOST_SDK_VERSION" ]
}
build_python_host() {
  have_python_host && return 0
  go_program pulumi-language-python github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python \
    "$SDK_VERSION_VARIABLE" "$LANGHOST_SDK_VERSION" tidy "github.com/pulumi/pulumi/sdk/v3@$LANGHOST_SDK_VERSION" &&
    install -m 0755 "$(cd "$CACHE/build/pulumi-language-python" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python/cmd/pulumi-language-python-exec" \
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
  go_program pulumi-language-yaml github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
    github.com/pulumi/pulumi-yaml/pkg/version.Version "$PULUMI_YAML_VERSION" tidy "github.com/pulumi/pulumi-yaml@$PULUMI_YAML_VERSION" &&
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
