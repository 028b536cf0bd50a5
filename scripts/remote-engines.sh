#!/usr/bin/env bash
# Installs what the remote-engine tests need, idempotently (quick when everything is there):
#   - Debian's openssh-server (sshd for ssh:// engines) and apache2-utils (htpasswd -B), as root via apt;
#   - a container registry built from Go modules (github.com/distribution/distribution/v3, cmd/registry),
#     cached in $RESEAT_CACHE/bin/registry-<version>: no registry image can be pulled here.
# The tests themselves (test/support/remoteEngines/) start and stop a second dockerd, an sshd and the
# registry, each with its own files, ports and keys; nothing here configures or starts a system service.
#
#   bash scripts/remote-engines.sh [install]   # the above
#   bash scripts/remote-engines.sh registry-bin # prints the registry binary's path
set -euo pipefail

CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
# Versions the Go module proxy serves: `go list -m -versions github.com/distribution/distribution/v3`
# answered v3.0.0 v3.1.1 v3.1.2 when this was written; v3.1.2 has no replace directives, so
# `go install module/cmd/registry@version` builds it without a wrapper module.
REGISTRY_VERSION="${RESEAT_REGISTRY_VERSION:-v3.1.2}"
REGISTRY_BIN="$CACHE/bin/registry-$REGISTRY_VERSION"
CMD="${1:-install}"

say() { printf '[remote-engines] %s\n' "$*" >&2; }

if [ "$CMD" = registry-bin ]; then
  echo "$REGISTRY_BIN"
  exit 0
fi
[ "$CMD" = install ] || { say "usage: $0 [install|registry-bin]"; exit 2; }
mkdir -p "$CACHE/bin"

# 1. Debian packages (installing them starts nothing: no systemd here, and the tests run their own sshd).
missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d 101: the package's postinst must not start the system sshd.
    policy=/usr/sbin/policy-rc.d
    placed_policy=""
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && placed_policy=1; fi
    { apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }; } || status=$?
    [ -z "$placed_policy" ] || rm -f "$policy"
    [ "${status:-0}" = 0 ] || { say "apt-get install ${missing[*]} failed"; exit 1; }
  else
    say "missing ${missing[*]}: install them (Debian: openssh-server apache2-utils openssl) and re-run"
    exit 1
  fi
fi

# 2. The registry, from Go modules (first build: a minute or two).
if [ ! -x "$REGISTRY_BIN" ]; then
  command -v go >/dev/null 2>&1 || { say "the test registry is built from Go modules: install Go (>= 1.26) and re-run"; exit 1; }
  say "building github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
  gobin="$(mktemp -d)"
  GOBIN="$gobin" GOFLAGS="-trimpath" nice go install "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" >&2
  mv "$gobin/registry" "$REGISTRY_BIN"
  rmdir "$gobin"
fi
say "ready: $(/usr/sbin/sshd -V 2>&1 | head -n 1 || true); registry $REGISTRY_VERSION"
