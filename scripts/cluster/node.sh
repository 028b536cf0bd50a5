# One node of the local cluster (sourced by scripts/cluster.sh): its own network namespace (address, pods'
# CNI bridge and subnet, iptables rules: scripts/cluster/network.sh), cgroup root, containerd (config, root,
# state, socket, runc root), kubelet (root dir, certificates) and kube-proxy, all under $STATE/<node> except
# what the kernel keeps elsewhere (the namespace, cgroups).

node_index() { echo "${1#node}"; }                              # node1 -> 1
node_ip() { echo "$NET.0.$((10 + $(node_index "$1")))"; }         # node1 -> 10.244.0.11 (eth0 of its namespace)
node_subnet() { echo "$NET.$(node_index "$1").0/24"; }           # node1 -> 10.244.1.0/24
node_bridge() { echo "cni0"; }                                   # inside the node's namespace
node_kubelet_port() { echo 10250; }                              # each node has its own address
node_healthz_port() { echo 10248; }                              # on the node namespace's 127.0.0.1
node_socket() { echo "$STATE/$1/containerd/containerd.sock"; }
node_cgroup() { echo "/$CGROUP_PREFIX-$1"; }

# The cgroup hierarchies mounted here: "v1 <dir>" per v1 controller mount, "v2 <dir>" for a cgroup2 mount.
cgroup_mounts() {
  awk '$9 == "cgroup" { print "v1 " $5 } $9 == "cgroup2" { print "v2 " $5 }' /proc/self/mountinfo
}

# The kubelet (cgroupfs driver) wants its cgroupRoot to exist in every hierarchy already.
make_node_cgroups() {
  local node="$1" kind dir path
  while read -r kind dir; do
    path="$dir$(node_cgroup "$node")"
    mkdir -p "$path"
    if [ "$kind" = v1 ] && [ -f "$dir/cpuset.cpus" ]; then
      cat "$dir/cpuset.cpus" >"$path/cpuset.cpus"
      cat "$dir/cpuset.mems" >"$path/cpuset.mems"
    fi
    if [ "$kind" = v2 ] && [ -f "$dir/cgroup.subtree_control" ] && [ "$dir" = /sys/fs/cgroup ]; then
      # Pure cgroup v2: hand the controllers down to the node's subtree.
      local c
      for c in $(cat "$dir/cgroup.controllers"); do echo "+$c" >"$dir/cgroup.subtree_control" 2>/dev/null || true; done
    fi
  done < <(cgroup_mounts)
}

write_cni_config() {
  local node="$1" dir="$STATE/$1/cni"
  mkdir -p "$dir/net.d" "$dir/ipam"
  # bridge + host-local: the node's own bridge and subnet, in the node's namespace (the plugins run in
  # containerd's); portmap for hostPort; firewall so that pod traffic is accepted in FORWARD.
  cat >"$dir/net.d/10-reseat.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CLUSTER_NAME-$node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$(node_bridge "$node")",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$(node_subnet "$node")" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$dir/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall", "backend": "iptables" }
  ]
}
EOF
}

write_containerd_config() {
  local node="$1" dir="$STATE/$1/containerd"
  mkdir -p "$dir/root" "$dir/state" "$dir/runc" "$dir/opt"
  cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
# Plugins this node does not use (and which would touch host-wide paths or probe other filesystems).
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_REF"
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  # Network namespaces under this node's state dir, not the host-wide /var/run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$dir/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/$node/cni/net.d"
    max_conf_num = 1
EOF
}

write_kubelet_config() {
  local node="$1" dir="$STATE/$1"
  mkdir -p "$dir/kubelet" "$dir/pod-logs" "$dir/volume-plugins"
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $(node_ip "$node")
port: $(node_kubelet_port "$node")
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(node_healthz_port "$node")
tlsCertFile: $PKI/$node-serving.crt
tlsPrivateKeyFile: $PKI/$node-serving.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
containerRuntimeEndpoint: unix://$(node_socket "$node")
cgroupDriver: cgroupfs
cgroupRoot: $(node_cgroup "$node")
failCgroupV1: false
failSwapOn: false
podLogsDir: $dir/pod-logs
volumePluginDir: $dir/volume-plugins
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# Images arrive by \`cluster.sh load-image\`, not from a registry: never garbage-collect them, and do not
# evict pods because a shared development disk is fuller than a production node's would be.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { "memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%" }
EOF
}

start_node() {
  local node="$1" ns
  ns="$(netns_path "$(node_netns "$node")")"
  start_daemon "containerd-$node" nsenter --net="$ns" -- containerd --config "$STATE/$node/containerd/config.toml"
  wait_for "containerd on $node" 30 ctr --address "$(node_socket "$node")" version
  ctr --address "$(node_socket "$node")" -n k8s.io images import "$PAUSE_TAR" >/dev/null
  start_daemon "kubelet-$node" nsenter --net="$ns" -- "$K8S_BIN/kubelet" \
    --config="$STATE/$node/kubelet.yaml" \
    --kubeconfig="$STATE/$node/kubelet.kubeconfig" \
    --root-dir="$STATE/$node/kubelet" \
    --hostname-override="$node" \
    --node-ip="$(node_ip "$node")" \
    --node-labels="reseat.local/node=$node" \
    --v=1
}

# Services (ClusterIPs, including `kubernetes` for in-cluster API clients) in each node's namespace, as on a
# real node. NodePorts only on the node's own address; no conntrack sysctls.
start_kube_proxy() {
  local node="$1"
  cat >"$STATE/$node/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $STATE/kube-proxy.kubeconfig }
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $node
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$(node_ip "$node")/32"]
iptables: { localhostNodePorts: false }
conntrack: { maxPerCore: 0, min: 0 }
EOF
  start_daemon "kube-proxy-$node" nsenter --net="$(netns_path "$(node_netns "$node")")" -- \
    "$K8S_BIN/kube-proxy" --config="$STATE/$node/kube-proxy.yaml" --v=1
}
