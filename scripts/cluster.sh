#!/usr/bin/env bash
# A real two-node Kubernetes cluster on this machine, for reseat's demo, tests and benches: etcd, API server,
# controller manager and scheduler in a "hub" network namespace, and two nodes (node1, node2), each in a network
# namespace of its own (as kind puts nodes in containers) with its own kubelet, containerd, kube-proxy, cgroup
# root, CNI bridge and subnet, with TLS and RBAC. The host reaches them through one veth into the hub: no cluster
# address is on any host interface. Built from Go modules and Debian packages (scripts/build-kubernetes.sh,
# cached beside the Pulumi CLI). See docs/kubernetes-cluster.md.
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

# A second cluster can run beside the default one (e.g. to try a change of these scripts while others' tests
# use the default): another state dir, name (network namespaces, host link, cgroups, CNI networks) and /16.
DEFAULT_STATE="$RESEAT_CACHE/k8s/cluster"
STATE="${RESEAT_CLUSTER_STATE:-$DEFAULT_STATE}" # everything the running cluster uses: pki, etcd, nodes, volumes, logs
CLUSTER_NAME="${RESEAT_CLUSTER_NAME:-rsk8s}"   # at most 10 characters: the host link is $CLUSTER_NAME-host
NET="${RESEAT_CLUSTER_NET:-10.244}"            # the cluster's /16, inside its namespaces only
CGROUP_PREFIX="$CLUSTER_NAME"
PKI="$STATE/pki"
KUBECONFIG_PATH="$STATE/admin.kubeconfig"
HOST_PATHS_FILE="$STATE/host-paths-created"
LAYOUT_FILE="$STATE/layout"
LAYOUT=netns # scripts/cluster/network.sh; a state dir without this file was made by the older loopback layout
LOCK_FILE="$STATE.lock"
NODES="node1 node2"
# The kubelet refuses a loopback node IP ("nodeIP can't be loopback address"): nodes and the API server have
# addresses of the cluster's /16 on interfaces of the namespaces the script makes (scripts/cluster/network.sh).
# etcd, and the components' health and metrics ports, listen on their namespace's own 127.0.0.1.
CLUSTER_CIDR="$NET.0.0/16" API_IP="$NET.0.1" API_PORT=6443 HUB_GATEWAY="$NET.255.254" LOOPBACK_IP=127.0.0.1
HOST_LINK="$CLUSTER_NAME-host"
# A StatefulSet's rollingUpdate.maxUnavailable is off by default in 1.35: on, so the StatefulSet peer in
# `npm run bench -- scale` may replace k pods at a time, as reseat's fleets do (a fair comparison).
FEATURE_GATES="MaxUnavailableStatefulSet=true"
POD_CIDR="$CLUSTER_CIDR" # node N's pods: $NET.N.0/24 (scripts/cluster/node.sh)
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
# shellcheck source=cluster/network.sh
source "$SCRIPTS/cluster/network.sh"
# shellcheck source=cluster/teardown.sh
source "$SCRIPTS/cluster/teardown.sh"

kubectl_admin() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# ---- preflight ----------------------------------------------------------------------------------------------
# Debian packages the cluster needs, by the command (or file) each provides.
DEBIAN_NEEDS=(
  "containerd:containerd" "ctr:containerd" "runc:runc" "$CNI_BIN_DIR/bridge:containernetworking-plugins"
  "iptables:iptables" "ip:iproute2" "openssl:openssl" "conntrack:conntrack" "socat:socat" "curl:curl"
  "nsenter:util-linux"
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
  [[ "$CLUSTER_NAME" =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "RESEAT_CLUSTER_NAME=$CLUSTER_NAME: expected 1 to 10 lowercase letters or digits, starting with a letter (it names network namespaces, the host link and cgroups)"
  [[ "$NET" =~ ^(10|172|192)\.[0-9]{1,3}$ ]] || die "RESEAT_CLUSTER_NET=$NET: expected the first two octets of a private /16, e.g. 10.244"
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
    declare -f start_daemon start_control_plane start_kube_proxy make_network make_netns netns_sysctls make_pki ca_pair cert_pair \
      write_kubeconfig make_kubeconfigs make_node_cgroups write_cni_config write_containerd_config \
      write_kubelet_config start_node node_index node_ip node_subnet node_bridge node_kubelet_port \
      node_healthz_port node_socket node_cgroup
    cat "$SCRIPTS/cluster/manifests.yaml"
    echo "$K8S_VERSION $PAUSE_REF $PROVISIONER_BIN $NODES $API_IP $API_PORT $LOOPBACK_IP $CLUSTER_NAME $HUB_GATEWAY"
    echo "$POD_CIDR $SERVICE_CIDR $CNI_BIN_DIR $FEATURE_GATES"
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

# The daemons of the layout the state dir was made with (a running cluster of the older layout is kept).
DAEMONS() {
  echo "etcd kube-apiserver kube-controller-manager kube-scheduler node-local-provisioner"
  if [ -f "$LAYOUT_FILE" ]; then
    for n in $NODES; do echo "containerd-$n kubelet-$n kube-proxy-$n"; done
  else
    echo kube-proxy
    for n in $NODES; do echo "containerd-$n kubelet-$n"; done
  fi
}

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
  # /run/netns: where `ip netns add` mounts the namespaces (made, and mounted on itself, on first use).
  for p in /var/lib/cni /var/lib/cni/results /var/log/containers /run/netns; do [ -e "$p" ] || echo "$p"; done >"$HOST_PATHS_FILE"
}

start_control_plane() {
  local hub
  hub="$(netns_path "$(hub_netns)")"
  start_daemon etcd nsenter --net="$hub" -- "$K8S_BIN/etcd" --name=reseat-local --data-dir="$STATE/etcd" \
    --listen-client-urls="https://$LOOPBACK_IP:2379" --advertise-client-urls="https://$LOOPBACK_IP:2379" \
    --listen-peer-urls="https://$LOOPBACK_IP:2380" --initial-advertise-peer-urls="https://$LOOPBACK_IP:2380" \
    --initial-cluster="reseat-local=https://$LOOPBACK_IP:2380" --initial-cluster-state=new \
    --cert-file="$PKI/etcd.crt" --key-file="$PKI/etcd.key" --trusted-ca-file="$PKI/etcd-ca.crt" --client-cert-auth \
    --peer-cert-file="$PKI/etcd.crt" --peer-key-file="$PKI/etcd.key" --peer-trusted-ca-file="$PKI/etcd-ca.crt" --peer-client-cert-auth \
    --log-level=warn
  wait_for etcd 30 in_hub curl -sf --cacert "$PKI/etcd-ca.crt" --cert "$PKI/apiserver-etcd-client.crt" --key "$PKI/apiserver-etcd-client.key" "https://$LOOPBACK_IP:2379/health"

  start_daemon kube-apiserver nsenter --net="$hub" -- "$K8S_BIN/kube-apiserver" \
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

  start_daemon kube-controller-manager nsenter --net="$hub" -- "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
    --bind-address="$LOOPBACK_IP" --secure-port=10257 --leader-elect=false --cluster-name=reseat-local \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false --v=1 \
    --feature-gates="$FEATURE_GATES"
  start_daemon kube-scheduler nsenter --net="$hub" -- "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address="$LOOPBACK_IP" --secure-port=10259 --leader-elect=false --profiling=false --v=1

  # RBAC for the provisioner and the node-local StorageClass (reclaimPolicy Retain, WaitForFirstConsumer).
  wait_for "RBAC bootstrap roles" 60 kubectl_admin get clusterrole system:kube-scheduler
  kubectl_admin apply -f "$SCRIPTS/cluster/manifests.yaml" >/dev/null
  start_daemon node-local-provisioner nsenter --net="$hub" -- "$PROVISIONER_BIN" \
    --kubeconfig="$STATE/provisioner.kubeconfig" --root="$STATE/volumes" --v=1
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
  echo "$LAYOUT" >"$LAYOUT_FILE"
  record_host_paths
  make_network
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
    start_kube_proxy "$node"
  done
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
  # Where pods reach a service of this host: a forwarder in the hub's namespace, on the API server's address.
  [ -f "$LAYOUT_FILE" ] && echo "hub: netns $(hub_netns) address $API_IP"
  local node state
  for node in $NODES; do
    state="$(kubectl_admin get node "$node" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)"
    case "$state" in True) state=Ready ;; "") state=Missing ;; *) state=NotReady ;; esac
    echo "node: $node $state $(node_ip "$node") pods $(node_subnet "$node") netns $(node_netns "$node")"
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
  say "down: processes, mounts, cgroups, network namespaces, host link and state removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  load-image) shift; load_image "$@" ;;
  *) die "usage: scripts/cluster.sh up|down|status|load-image IMAGE…" ;;
esac
