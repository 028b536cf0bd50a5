#!/usr/bin/env bash
# The main job: the demo stack on the embedded defaults (local file backend, stack config
# stacks/Pulumi.<stack>.yaml). Installs what the demo runs, and nothing else, first.
#   bash scripts/demo.sh                 the local Docker Engine (stacks/Pulumi.local.yaml)
#   bash scripts/demo.sh --stack k8s     the local two-node Kubernetes cluster (stacks/Pulumi.k8s.yaml)
#   bash scripts/demo.sh --json          the same, one JSON document on stdout (progress on stderr)
set -euo pipefail
stack=local
json=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) [ $# -ge 2 ] || { echo "scripts/demo.sh: --stack needs a value (local or k8s)" >&2; exit 2; }; stack="$2"; shift 2 ;;
    --stack=*) stack="${1#--stack=}"; shift ;;
    --json) json=(--json); shift ;;
    *) echo "usage: scripts/demo.sh [--stack local|k8s] [--json]" >&2; exit 2 ;;
  esac
done
case "$stack" in
  local) need=demo ;;
  k8s) need=k8s ;;
  *) echo "scripts/demo.sh: --stack: expected local or k8s, got \"$stack\"" >&2; exit 2 ;;
esac
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh" "$need"
cd "$RESEAT_ROOT"
if [ "$stack" = k8s ]; then
  # The local cluster (started when absent), its kubeconfig, and the demo's images on every node.
  bash scripts/cluster.sh up >&2
  KUBECONFIG="$(bash scripts/cluster.sh status | sed -n 's/^kubeconfig: //p')"
  export KUBECONFIG
  bash scripts/cluster.sh load-image reseat-session-workload:v1 reseat-session-workload:v2 >&2
fi
node dist/stacks/demo.js --stack "$stack" "${json[@]}"
