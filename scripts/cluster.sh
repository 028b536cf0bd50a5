#!/usr/bin/env bash
# A real two-node Kubernetes cluster on this machine, for reseat's demo, tests and benches: etcd, API server,
# controller manager and scheduler, and two nodes (node1, node2), each with its own kubelet, containerd,
# cgroup root, CNI bridge and subnet, on the host's loopback interface, with TLS and RBAC. Built from Go modules and
# Debian packages (scripts/build-kubernetes.sh, cached beside the Pulumi CLI). See docs/kubernetes-cluster.md.
#
#   scripts/cluster.sh up                  build what is missing, start (quick when already up), print status
#   scripts/cluster.sh status              print the kubeconfig path and node states; exit 1 when not up
#   scripts/cluster.sh load-image IMAGE…   copy Docker images into every node's image store
#   scripts/cluster.sh down                stop everything and remove every trace of the cluster
#
# Users' own clusters need none of this: any kubeconfig works; this one is only the local default.
set -euo pipefail
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
export RESEAT_CACHE

STATE="$RESEAT_CACHE/k8s/cluster"          # everything the running cluster uses: pki, etcd, nodes, volumes, logs
PKI="$STATE/pki"
KUBECONFIG_PATH="$STATE/admin.kubeconfig"
HOST_PATHS_FILE="$STATE/host-paths-created"
NFT_TABLES_FILE="$STATE/nft-tables-before"
LOCK_FILE="$RESEAT_CACHE/k8s/cluster.lock"
NODES="node1 node2"
# The kubelet refuses a loopback node IP ("nodeIP can't be loopback address"), and pods cannot reach
# 127.0.0.0/8 of the host: node and API addresses are private /32s on the host's loopback interface `lo`
# (local-only, like 127.x), added by `up` and removed by `down`. etcd listens on a 127.x address only.
API_IP=10.244.0.1 API_PORT=6443 LOOPBACK_IP=127.0.10.1
LOOPBACK_ADDRESSES="10.244.0.1 10.244.0.11 10.244.0.12"
# A StatefulSet's rollingUpdate.maxUnavailable is off by default in 1.35: on, so the StatefulSet peer in
# `npm run bench -- scale` may replace k pods at a time, as reseat's fleets do (a fair comparison).
FEATURE_GATES="MaxUnavailableStatefulSet=true"
NODE_ADDRESS_CIDR=10.244.0.0/24 POD_CIDR=10.244.0.0/16      # node subnets: 10.244.<N>.0/24 (scripts/cluster/node.sh)
SERVICE_CIDR=10.97.0.0/24 SERVICE_IP_KUBERNETES=10.97.0.1
CNI_BIN_DIR=/usr/lib/cni
STORAGE_CLASS=reseat-node-local

say() { printf '[cluster] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

eval "$(bash "$SCRIPTS/build-kubernetes.sh" print-env)"
# shellcheck source=cluster/pki.sh
source "$SCRIPTS/cluster/pki.sh"
# shellcheck source=cluster/node.sh
source "$SCRIPTS/cluster/node.sh"
# shellcheck source=cluster/teardown.sh
source "$SCRIPTS/cluster/teardown.sh"

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# ---- preflight ----------------------------------------------------------------------------------------------
# Debian packages the cluster needs, by the command (or file) each provides.
DEBIAN_NEEDS=(
  "containerd:containerd" "ctr:containerd" "runc:runc" "$CNI_BIN_DIR/bridge:containernetworking-plugins"
  "iptables:iptables" "ip:iproute2" "openssl:openssl" "conntrack:conntrack" "socat:socat" "curl:curl"
)

preflight() {
  [ "$(id -u)" = 0 ] || die "must run as root: the kubelets and containerd manage cgroups, mounts, network namespaces and iptables"
  [ "$(uname -s)" = Linux ] || die "needs Linux (found $(uname -s))"
  [ -n "$(cgroup_mounts)" ] || die "no cgroup filesystem is mounted at /sys/fs/cgroup: containers need cgroup v1 controllers or cgroup v2"
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || die "the kernel has no overlay filesystem (containerd's snapshotter needs it)"
  local missing=() entry cmd pkg
  for entry in "${DEBIAN_NEEDS[@]}"; do
    cmd="${entry%%:*}" pkg="${entry##*:}"
    if [[ "$cmd" == /* ]]; then [ -x "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "missing: ${missing[*]} (Debian package names); install them and re-run"
    say "installing Debian packages: ${missing[*]}"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 ||
      die "apt-get install ${missing[*]} failed"
  fi
  [ "${#STATE}" -lt 60 ] || die "state dir $STATE is too long for containerd's unix sockets: set RESEAT_CACHE to a shorter path"
}

build() {
  bash "$SCRIPTS/build-kubernetes.sh" cluster >&2
  mkdir -p "$RESEAT_CACHE/bin"
  # A kubectl matching the server, beside the Pulumi CLI (first on PATH after scripts/env.sh).
  ln -sfn "$K8S_BIN/kubectl" "$RESEAT_CACHE/bin/kubectl"
}

# What a running cluster was started from — the functions that configure and start it (as bash prints
# them: comments and layout do not count), its manifests, addresses and binaries. `up` reports a running
# cluster started from another configuration but keeps it: several checkouts share the one cluster, and
# restarting it under another checkout's tests would break them. `down && up` applies the new one.
config_hash() {
  {
    declare -f start_daemon start_control_plane start_kube_proxy add_loopback_addresses make_pki ca_pair cert_pair \
      write_kubeconfig make_kubeconfigs make_node_cgroups write_cni_config write_containerd_config \
      write_kubelet_config start_node node_index node_ip node_subnet node_bridge node_kubelet_port \
      node_healthz_port node_socket node_cgroup
    cat "$SCRIPTS/cluster/manifests.yaml"
    echo "$K8S_VERSION $PAUSE_REF $PROVISIONER_BIN $NODES $API_IP $API_PORT $LOOPBACK_IP $LOOPBACK_ADDRESSES"
    echo "$NODE_ADDRESS_CIDR $POD_CIDR $SERVICE_CIDR $CNI_BIN_DIR $FEATURE_GATES"
  } | sha256sum | cut -c1-16
}

# ---- processes ----------------------------------------------------------------------------------------------
start_daemon() { # name command…
  local name="$1"; shift
  mkdir -p "$STATE/pids" "$STATE/logs"
  # Own session, no inherited descriptors: the cluster outlives the shell (and CI step) that started it.
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$STATE/pids/$name.pid"
}

daemon_alive() { local f="$STATE/pids/$1.pid"; [ -f "$f" ] && pid_alive "$(cat "$f")"; }

wait_for() { # what seconds command…
  local what="$1" deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || break
    sleep 0.2
  done
  "$@" >/dev/null 2>&1 && return 0
  say "$what did not come up in time; last log lines:"
  local log
  for log in "$STATE"/logs/*.log; do
    [ -f "$log" ] && { echo "--- $log" >&2; tail -n 5 "$log" >&2; }
  done
  exit 1
}

DAEMONS() { echo "etcd kube-apiserver kube-controller-manager kube-scheduler node-local-provisioner kube-proxy"; for n in $NODES; do echo "containerd-$n kubelet-$n"; done; }

nodes_ready() {
  local ready
  ready="$(kubectl_admin get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{" "}{end}' 2>/dev/null)" || return 1
  local node
  for node in $NODES; do [[ " $ready " == *" $node=True "* ]] || return 1; done
}

# Every component alive, the API server ready and both nodes Ready.
running() {
  local d
  for d in $(DAEMONS); do daemon_alive "$d" || return 1; done
  kubectl_admin get --raw /readyz >/dev/null 2>&1 && nodes_ready
}


# ---- up ---------------------------------------------------------------------------------------------------
record_host_paths() {
  # Host paths the kubelet or CNI create when absent; `down` removes them again only if they were absent.
  local p
  for p in /var/lib/cni /var/lib/cni/results /var/log/containers; do [ -e "$p" ] || echo "$p"; done >"$HOST_PATHS_FILE"
  # With iptables' nf_tables backend, the first rule in a table creates the table: `down` removes the
  # tables that did not exist before, once they are empty again.
  if command -v nft >/dev/null 2>&1; then nft list tables 2>/dev/null >"$NFT_TABLES_FILE" || true; fi
}

add_loopback_addresses() {
  local a
  for a in $LOOPBACK_ADDRESSES; do
    ip -o addr show dev lo | grep -F " $a/32 " >/dev/null || ip addr add "$a/32" dev lo
  done
}

start_control_plane() {
  start_daemon etcd "$K8S_BIN/etcd" --name=reseat-local --data-dir="$STATE/etcd" \
    --listen-client-urls="https://$LOOPBACK_IP:2379" --advertise-client-urls="https://$LOOPBACK_IP:2379" \
    --listen-peer-urls="https://$LOOPBACK_IP:2380" --initial-advertise-peer-urls="https://$LOOPBACK_IP:2380" \
    --initial-cluster="reseat-local=https://$LOOPBACK_IP:2380" --initial-cluster-state=new \
    --cert-file="$PKI/etcd.crt" --key-file="$PKI/etcd.key" --trusted-ca-file="$PKI/etcd-ca.crt" --client-cert-auth \
    --peer-cert-file="$PKI/etcd.crt" --peer-key-file="$PKI/etcd.key" --peer-trusted-ca-file="$PKI/etcd-ca.crt" --peer-client-cert-auth \
    --log-level=warn
  wait_for etcd 30 curl -sf --cacert "$PKI/etcd-ca.crt" --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" "https://$LOOPBACK_IP:2379/health"

  start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
    --advertise-address="$API_IP" --bind-address="$API_IP" --secure-port="$API_PORT" \
    --etcd-servers="https://$LOOPBACK_IP:2379" --etcd-cafile="$PKI/etcd-ca.crt" \
    --etcd-certfile="$PKI/apiserver-etcd-client.crt" --etcd-keyfile="$PKI/apiserver-etcd-client.key" \
    --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --allow-privileged=true --profiling=false --v=1 --feature-gates="$FEATURE_GATES"
  wait_for "the API server" 90 kubectl_admin get --raw /readyz

  start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --bind-address="$LOOPBACK_IP" --secure-port=10257 --leader-elect=false --cluster-name=reseat-local \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false --v=1 \
    --feature-gates="$FEATURE_GATES"
  start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address="$LOOPBACK_IP" --secure-port=10259 --leader-elect=false --profiling=false --v=1

  # RBAC for the provisioner and the node-local StorageClass (reclaimPolicy Retain, WaitForFirstConsumer).
  wait_for "RBAC bootstrap roles" 60 kubectl_admin get clusterrole system:kube-scheduler
  kubectl_admin apply -f "$SCRIPTS/cluster/manifests.yaml" >/dev/null
  start_daemon node-local-provisioner "$PROVISIONER_BIN" \
    --kubeconfig="$STATE/provisioner.kubeconfig" --root="$STATE/volumes" --v=1
}

# Services (ClusterIPs, including `kubernetes` for in-cluster API clients). Both nodes share this machine's
# network namespace, so one kube-proxy programs it for both. NodePorts only on the nodes' own addresses,
# and no sysctl changes (conntrack limits, route_localnet) to the host.
start_kube_proxy() {
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $STATE/kube-proxy.kubeconfig }
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: node1
bindAddress: $LOOPBACK_IP
healthzBindAddress: $LOOPBACK_IP:10256
metricsBindAddress: $LOOPBACK_IP:10249
nodePortAddresses: ["$NODE_ADDRESS_CIDR"]
iptables: { localhostNodePorts: false }
conntrack: { maxPerCore: 0, min: 0 }
EOF
  start_daemon kube-proxy "$K8S_BIN/kube-proxy" --config="$STATE/kube-proxy.yaml" --v=1
}

up() {
  preflight
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  flock 9 # one `up`/`down`/build at a time, e.g. from two checkouts
  build
  if running; then
    if [ "$(cat "$STATE/config-hash" 2>/dev/null)" != "$(config_hash)" ]; then
      say "note: the running cluster was started from another configuration of these scripts; keeping it" \
        "(scripts/cluster.sh down && scripts/cluster.sh up applies this one)"
    fi
    status
    return 0
  fi
  if [ -d "$STATE" ]; then say "the cluster is not healthy (a component is down): starting it afresh"; fi
  teardown
  local started=$SECONDS node
  mkdir -p "$STATE/volumes"
  record_host_paths
  add_loopback_addresses
  make_pki
  for node in $NODES; do mkdir -p "$STATE/$node"; done
  make_kubeconfigs
  start_control_plane
  for node in $NODES; do
    make_node_cgroups "$node"
    write_cni_config "$node"
    write_containerd_config "$node"
    write_kubelet_config "$node"
    start_node "$node"
  done
  start_kube_proxy
  wait_for "nodes $NODES Ready" 120 nodes_ready
  # The scheduler needs the default service account of a namespace before it admits pods there.
  wait_for "the default service account" 60 kubectl_admin -n default get serviceaccount default
  config_hash >"$STATE/config-hash"
  say "started in $((SECONDS - started))s"
  status
}

# ---- status, load-image -----------------------------------------------------------------------------------
status() {
  if ! [ -f "$KUBECONFIG_PATH" ] || ! kubectl_admin get --raw /readyz >/dev/null 2>&1; then
    echo "cluster: down"
    return 1
  fi
  echo "cluster: up (kubernetes $K8S_VERSION)"
  echo "kubeconfig: $KUBECONFIG_PATH"
  echo "api: https://$API_IP:$API_PORT"
  local node state
  for node in $NODES; do
    state="$(kubectl_admin get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
    case "$state" in True) state=Ready ;; "") state=Missing ;; *) state=NotReady ;; esac
    echo "node: $node $state $(node_ip "$node") pods $(node_subnet "$node") bridge $(node_bridge "$node")"
  done
  echo "storageclass: $STORAGE_CLASS (default; provisioner reseat.local/node-local; WaitForFirstConsumer; reclaimPolicy Retain)"
  nodes_ready
}

# docker save | ctr import, into every node; skipped for a node that already has the same image id.
load_image() {
  [ $# -gt 0 ] || die "usage: cluster.sh load-image IMAGE…"
  running || die "the cluster is not up: run scripts/cluster.sh up first"
  local image id node marker archive
  for image in "$@"; do
    id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null)" || die "no Docker image $image (build it first, e.g. scripts/images.sh)"
    archive=""
    for node in $NODES; do
      marker="$STATE/$node/images/$(echo "$image" | tr '/:' '__')"
      if [ "$(cat "$marker" 2>/dev/null)" = "$id" ] &&
        ctr --address "$(node_socket "$node")" -n k8s.io images ls -q | grep -xF "$(canonical_image "$image")" >/dev/null; then
        continue
      fi
      if [ -z "$archive" ]; then
        archive="$(mktemp "$STATE/image-XXXXXX.tar")"
        docker save "$image" -o "$archive"
      fi
      ctr --address "$(node_socket "$node")" -n k8s.io images import "$archive" >/dev/null
      mkdir -p "$(dirname "$marker")" && echo "$id" >"$marker"
      say "loaded $image into $node"
    done
    [ -n "$archive" ] && rm -f "$archive"
  done
  return 0
}

# Docker's short names as containerd records them: name:tag -> docker.io/library/name:tag.
canonical_image() {
  local ref="$1" first="${1%%/*}"
  [[ "$ref" == *:* ]] || ref="$ref:latest"
  if [[ "$1" != */* ]]; then echo "docker.io/library/$ref"
  elif [[ "$first" != *.* && "$first" != *:* && "$first" != localhost ]]; then echo "docker.io/$ref"
  else echo "$ref"; fi
}

down() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  flock 9
  teardown
  say "down: processes, mounts, cgroups, iptables chains, bridges and state removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  load-image) shift; load_image "$@" ;;
  *) die "usage: scripts/cluster.sh up|down|status|load-image IMAGE…" ;;
esac
