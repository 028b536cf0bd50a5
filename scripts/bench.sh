#!/usr/bin/env bash
# npm run bench -- <metric>: bootstraps like the tests, then writes bench/results/<metric>.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$RESEAT_ROOT"
# A private PostgreSQL on 127.0.0.1:55432 for the postgres store (installed and started when absent).
bash scripts/postgres.sh start >&2
# Kubernetes metrics run on the local two-node cluster (started when absent) unless KUBECONFIG names one.
if [ $# -eq 0 ] || [[ " $* " == *" k8s_"* ]]; then
  if [ -z "${KUBECONFIG:-}" ]; then
    bash scripts/cluster.sh up >&2
    KUBECONFIG="$(bash scripts/cluster.sh status | sed -n 's/^kubeconfig: //p')"
    export KUBECONFIG
  fi
fi
node dist/bench/main.js "$@"
