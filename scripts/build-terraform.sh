#!/usr/bin/env bash
# Builds a Terraform-compatible CLI (OpenTofu) and the providers reseat needs from Go modules only,
# because no release binary and no provider registry is reachable here. Everything is cached outside
# the checkout in "${RESEAT_CACHE:-$HOME/.cache/reseat}" (CI clones afresh) and the script is
# idempotent: a piece that is already built and works is skipped.
#
#   $CACHE/bin/tofu                      the CLI
#   $CACHE/terraform-plugins/...         an "unpacked" filesystem_mirror of the providers
#   $CACHE/tofurc                        CLI config pointing tofu at that mirror only
#
# Use it with: export TF_CLI_CONFIG_FILE="$CACHE/tofurc"
#
# Usage: scripts/build-terraform.sh [all|tofu|docker|external|tofurc]
# Env:   TOFU_VERSION, DOCKER_PROVIDER_MODVER/DOCKER_PROVIDER_VERSION,
#        EXTERNAL_PROVIDER_MODVER/EXTERNAL_PROVIDER_VERSION, RESEAT_TF_STRICT=1 (fail on an
#        optional provider that cannot be had).
set -euo pipefail

CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
BIN="$CACHE/bin"
PLUGINS="$CACHE/terraform-plugins"
TOFURC="$CACHE/tofurc"

# OpenTofu release, as served by the Go module proxy (`go list -m -versions github.com/opentofu/opentofu`).
TOFU_VERSION="${TOFU_VERSION:-v1.12.6}"

# kreuzwerker/docker: its go.mod says `module github.com/terraform-providers/terraform-provider-docker`,
# so none of its vX tags is a valid Go module version and the proxy serves none of them; it serves only
# a pseudo-version of the default branch. 96d331c98ff4 (2026-09-16) is the commit after the v4.6.0
# release (2026-09-01, the top entry of its CHANGELOG.md), so the provider is labelled 4.6.0.
DOCKER_PROVIDER_MODVER="${DOCKER_PROVIDER_MODVER:-v0.0.0-20260916201441-96d331c98ff4}"
DOCKER_PROVIDER_VERSION="${DOCKER_PROVIDER_VERSION:-4.6.0}"

# hashicorp/external: same module-path situation (go.mod says
# github.com/terraform-providers/terraform-provider-external). When this was written the proxy here
# refused (403 "This module version is not available") every version and query of it, under both
# names, so it is built only if EXTERNAL_PROVIDER_MODVER names a version that the proxy serves.
EXTERNAL_PROVIDER_MODVER="${EXTERNAL_PROVIDER_MODVER:-}"
EXTERNAL_PROVIDER_VERSION="${EXTERNAL_PROVIDER_VERSION:-2.3.5}"

GOOS_GOARCH="$(go env GOOS)_$(go env GOARCH)"
export GOFLAGS="${GOFLAGS:-} -mod=mod"

log() { echo "build-terraform: $*" >&2; }

# Prints the GoMod (or Dir) path of MODULE@VERSION after downloading it; fails with the proxy's error.
mod_download() { # module version field
  local json err
  json="$(cd "$CACHE/build" && go mod download -json "$1@$2" 2>/dev/null)" || true
  err="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p')"
  if [ -n "$err" ] || [ -z "$json" ]; then
    log "go mod download $1@$2 failed: ${err:-no output}"
    return 1
  fi
  printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$3\": \"\(.*\)\",\{0,1\}\$/\1/p"
}

# Reads the replace directives of a go.mod (single-line and block form) and prints them as
# "OLDPATH NEWPATH NEWVERSION". The version on the left is dropped on purpose, so the replacement
# holds whichever version the wrapper's module graph selects. Local-path replacements (=> ./x) only
# make sense inside that module's own tree and are skipped with a warning.
replaces_of() { # go.mod
  awk '
    function emit(line,   parts, l, r, n, m, lhs, rhs) {
      sub(/\/\/.*/, "", line)
      if (index(line, "=>") == 0) return
      split(line, parts, "=>")
      n = split(parts[1], lhs, " "); m = split(parts[2], rhs, " ")
      if (n < 1 || m < 1) return
      if (rhs[1] ~ /^\.\.?\// || rhs[1] ~ /^\//) { print "LOCAL " lhs[1] " " rhs[1]; return }
      print lhs[1] " " rhs[1] " " (m >= 2 ? rhs[2] : "")
    }
    /^replace[[:space:]]*\(/ { inblock = 1; next }
    inblock && /^[[:space:]]*\)/ { inblock = 0; next }
    inblock { emit($0); next }
    /^replace[[:space:]]/ { line = $0; sub(/^replace[[:space:]]+/, "", line); emit(line) }
  ' "$1"
}

# Applies the replaces of UPSTREAM_GOMOD to the go.mod in the current directory.
copy_replaces() { # upstream-go.mod
  local old new ver
  while read -r old new ver; do
    if [ "$old" = LOCAL ]; then
      log "skipping local replace $new => $ver from $1"
      continue
    fi
    if [ -n "$ver" ]; then go mod edit -replace="$old=$new@$ver"; else go mod edit -replace="$old=$new"; fi
    log "  replace $old => $new $ver"
  done < <(replaces_of "$1")
}

timed() { # label command...
  local start=$SECONDS
  "${@:2}"
  log "$1 took $((SECONDS - start))s"
}

build_tofu() {
  if [ -x "$BIN/tofu" ] && env -u TF_CLI_CONFIG_FILE "$BIN/tofu" version 2>/dev/null | head -1 | grep "v${TOFU_VERSION#v}\$" >/dev/null; then
    log "tofu ${TOFU_VERSION} already built: $BIN/tofu"
    return 0
  fi
  local dir="$CACHE/build/tofu" gomod src
  mkdir -p "$dir" "$BIN"
  gomod="$(mod_download github.com/opentofu/opentofu "$TOFU_VERSION" GoMod)" || return 1
  src="$(mod_download github.com/opentofu/opentofu "$TOFU_VERSION" Dir)" || return 1
  # -X version.dev=no drops the "-dev" suffix, as OpenTofu's release builds do.
  # OpenTofu's go.mod `go` line and godebug block set its runtime defaults; only the main module's
  # count, so the wrapper carries them over (e.g. tlsmlkem=0).
  local gover godebug
  gover="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -1)"
  godebug="$(awk '/^godebug[[:space:]]*\(/{b=1;print;next} b{print; if ($0 ~ /^\)/) b=0; next} /^godebug[[:space:]]/{print}' "$gomod")"
  cat >"$dir/go.mod" <<MOD
module reseat.local/tofu

go ${gover:-1.26}

${godebug}

require github.com/opentofu/opentofu ${TOFU_VERSION}
MOD
  cp "$src/go.sum" "$dir/go.sum" && chmod u+w "$dir/go.sum"
  (cd "$dir" && copy_replaces "$gomod" &&
    timed "go build tofu ${TOFU_VERSION}" \
      go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
        -o "$BIN/tofu.tmp" github.com/opentofu/opentofu/cmd/tofu) || return 1
  mv -f "$BIN/tofu.tmp" "$BIN/tofu"
  env -u TF_CLI_CONFIG_FILE "$BIN/tofu" version
}

# build_provider NAMESPACE TYPE DECLARED_MODULE_PATH REAL_MODULE_PATH MODULE_VERSION PROVIDER_VERSION
# The provider's go.mod declares DECLARED_MODULE_PATH, so the wrapper requires that path and replaces
# it with REAL_MODULE_PATH@MODULE_VERSION, plus the provider's own replace directives.
build_provider() {
  local ns="$1" type="$2" declared="$3" real="$4" modver="$5" version="$6"
  local dest="$PLUGINS/registry.terraform.io/$ns/$type/$version/$GOOS_GOARCH"
  local out="$dest/terraform-provider-${type}_v$version"
  if [ -x "$out" ]; then
    log "$ns/$type $version already built: $out"
    return 0
  fi
  local dir="$CACHE/build/provider-$type" gomod src gover
  mkdir -p "$dir" "$dest"
  gomod="$(mod_download "$real" "$modver" GoMod)" || return 1
  src="$(mod_download "$real" "$modver" Dir)" || return 1
  local actual
  actual="$(sed -n 's/^module[[:space:]]*\([^[:space:]]*\).*/\1/p' "$gomod" | head -1)"
  if [ "$actual" != "$declared" ]; then
    log "$real@$modver declares module $actual (expected $declared); using that"
    declared="$actual"
  fi
  gover="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod" | head -1)"
  cat >"$dir/go.mod" <<MOD
module reseat.local/provider-$type

go ${gover:-1.26}

require $declared $modver

replace $declared => $real $modver
MOD
  cp "$src/go.sum" "$dir/go.sum" && chmod u+w "$dir/go.sum"
  # The provider's main package sets `var version = "dev"`; stamp the real one.
  (cd "$dir" && copy_replaces "$gomod" &&
    timed "go build $ns/$type $version" \
      go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out.tmp" "$declared") || return 1
  mv -f "$out.tmp" "$out"
  log "installed $out"
}

# OpenTofu resolves a short source ("kreuzwerker/docker") to registry.opentofu.org, Terraform to
# registry.terraform.io. The mirror is laid out under registry.terraform.io and every binary is
# hard-linked (copied, across filesystems) under registry.opentofu.org too, so both spellings resolve
# to the same local binaries. (tofu does not descend into a symlinked hostname directory.)
write_tofurc() {
  mkdir -p "$PLUGINS/registry.terraform.io"
  local f rel
  [ -L "$PLUGINS/registry.opentofu.org" ] && rm -f "$PLUGINS/registry.opentofu.org"
  while IFS= read -r f; do
    rel="${f#"$PLUGINS/registry.terraform.io/"}"
    [ -e "$PLUGINS/registry.opentofu.org/$rel" ] && continue
    mkdir -p "$(dirname "$PLUGINS/registry.opentofu.org/$rel")"
    ln -f "$f" "$PLUGINS/registry.opentofu.org/$rel" 2>/dev/null || cp -p "$f" "$PLUGINS/registry.opentofu.org/$rel"
  done < <(find "$PLUGINS/registry.terraform.io" -type f -name 'terraform-provider-*')
  cat >"$TOFURC.tmp" <<RC
# Written by reseat scripts/build-terraform.sh: providers come only from the local mirror.
provider_installation {
  filesystem_mirror {
    path    = "$PLUGINS"
    include = ["registry.terraform.io/*/*", "registry.opentofu.org/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*", "registry.opentofu.org/*/*"]
  }
}
RC
  mv -f "$TOFURC.tmp" "$TOFURC"
}

main() {
  mkdir -p "$CACHE/build" "$BIN" "$PLUGINS"
  local what="${1:-all}" failed=()
  case "$what" in all | tofu) build_tofu || failed+=(tofu) ;; esac
  case "$what" in all | docker)
    build_provider kreuzwerker docker github.com/terraform-providers/terraform-provider-docker \
      github.com/kreuzwerker/terraform-provider-docker "$DOCKER_PROVIDER_MODVER" "$DOCKER_PROVIDER_VERSION" ||
      failed+=(docker)
    ;;
  esac
  case "$what" in all | external)
    if [ -n "$EXTERNAL_PROVIDER_MODVER" ]; then
      build_provider hashicorp external github.com/terraform-providers/terraform-provider-external \
        github.com/hashicorp/terraform-provider-external "$EXTERNAL_PROVIDER_MODVER" "$EXTERNAL_PROVIDER_VERSION" ||
        failed+=(external)
    elif [ -x "$PLUGINS/registry.terraform.io/hashicorp/external/$EXTERNAL_PROVIDER_VERSION/$GOOS_GOARCH/terraform-provider-external_v$EXTERNAL_PROVIDER_VERSION" ]; then
      log "hashicorp/external $EXTERNAL_PROVIDER_VERSION already in the mirror"
    else
      log "hashicorp/external: not built: the Go module proxy here serves no version of"
      log "  github.com/hashicorp/terraform-provider-external (set EXTERNAL_PROVIDER_MODVER to one it serves)"
      if [ "${RESEAT_TF_STRICT:-0}" = 1 ] || [ "$what" = external ]; then failed+=(external); fi
    fi
    ;;
  esac
  write_tofurc
  log "providers in the mirror:"
  (cd "$PLUGINS/registry.terraform.io" && find . -type f -name 'terraform-provider-*' | sed 's|^\./|  registry.terraform.io/|') >&2
  echo "export TF_CLI_CONFIG_FILE=$TOFURC"
  echo "export PATH=$BIN:\$PATH"
  if [ "${#failed[@]}" -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    return 1
  fi
}

main "$@"
