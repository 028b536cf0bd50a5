#!/usr/bin/env bash
# The main job: the demo stack on the embedded defaults (local file backend, stack config
# stacks/Pulumi.<stack>.yaml). Installs what is missing first.
#   bash scripts/demo.sh                 the local Docker Engine (stacks/Pulumi.local.yaml)
#   bash scripts/demo.sh --stack k8s     the local two-node Kubernetes cluster (stacks/Pulumi.k8s.yaml)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$RESEAT_ROOT"
stack=local
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack="$2"; shift 2 ;;
    --stack=*) stack="${1#--stack=}"; shift ;;
    *) echo "usage: scripts/demo.sh [--stack local|k8s]" >&2; exit 2 ;;
  esac
done
if [ "$stack" = k8s ]; then
  # The local cluster (built and started when absent), its kubeconfig, and the demo images on every node.
  bash scripts/cluster.sh up >&2
  KUBECONFIG="$(bash scripts/cluster.sh status | sed -n 's/^kubeconfig: //p')"
  export KUBECONFIG
  bash scripts/cluster.sh load-image reseat-demo-workload:v1 reseat-demo-workload:v2 >&2
fi
node dist/stacks/demo.js --stack "$stack"
