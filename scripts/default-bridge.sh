#!/usr/bin/env bash
# The local engine's default bridge (docker0), kept in place.
#
#   bash scripts/default-bridge.sh save FILE     # record docker0's IPv4 address (nothing when it is absent)
#   bash scripts/default-bridge.sh restore FILE  # re-create docker0 with that address if it is gone
#   bash scripts/default-bridge.sh heal          # re-create docker0 from the engine's own `bridge` network
#
# Why: a second dockerd started with --bridge=none in this network namespace (the tests' extra engines)
# deletes the interface named docker0 on start-up (moby's removeDefaultBridgeInterface), and the
# machine's engine does not re-create it until it restarts: containers on its default `bridge` network
# and image builds with RUN steps then fail ("could not find bridge docker0"). Re-creating the bridge
# with the same name and address is all the engine needs (it attaches veths to it by name).
set -euo pipefail
cmd="${1:-heal}"
present() { ip link show docker0 >/dev/null 2>&1; }
create() {
  ip link add docker0 type bridge
  ip addr add "$1" dev docker0
  ip link set docker0 up
  echo "[default-bridge] re-created docker0 ($1)" >&2
}
case "$cmd" in
  save)
    : >"$2"
    if present; then ip -4 -o addr show dev docker0 | awk '{ print $4; exit }' >"$2"; fi ;;
  restore)
    address="$(cat "$2" 2>/dev/null || true)"
    if [ -n "$address" ] && ! present; then create "$address"; fi ;;
  heal)
    if ! present && [ "$(id -u)" = 0 ]; then
      gateway="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null || true)"
      subnet="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' 2>/dev/null || true)"
      # The default bridge's IPAM names no gateway: it is the subnet's first address (172.17.0.1).
      if [ -z "$gateway" ] && [ -n "$subnet" ]; then gateway="$(echo "${subnet%/*}" | awk -F. '{ printf "%d.%d.%d.%d", $1, $2, $3, $4 + 1 }')"; fi
      if [ -n "$gateway" ] && [ -n "$subnet" ]; then create "$gateway/${subnet#*/}"; fi
    fi ;;
  *) echo "usage: $0 save FILE | restore FILE | heal" >&2; exit 2 ;;
esac
