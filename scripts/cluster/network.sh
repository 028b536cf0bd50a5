# The local cluster's network (sourced by scripts/cluster.sh): network namespaces the script makes, so that
# no cluster address is ever put on an interface of the host.
#
#   host ── $HOST_LINK ═ veth ═ uplink ┐  hub namespace: etcd, API server, controller manager, scheduler,
#                                      │  provisioner; bridge br0 holds the API address $NET.0.1
#        br0 ── node1 ═ veth ═ eth0 (node1's namespace: $NET.0.11; containerd, kubelet, kube-proxy, pods' cni0)
#            └─ node2 ═ veth ═ eth0 (node2's namespace: $NET.0.12; …)
#
# The host reaches the cluster's /16 only through a route via the hub's end of the host link ($HUB_GATEWAY):
# the host keeps no address of its own on that link (it picks its usual source address), and the hub sends
# everything that is not the cluster's back up the link (its default route), so replies find the host.
# Only the namespaces' own processes join them (nsenter --net: the host's mounts, cgroups and /proc stay
# shared, which the kubelet and containerd need); `ip netns exec` is not used because it remounts /sys.

netns_path() { echo "/run/netns/$1"; }
hub_netns() { echo "$CLUSTER_NAME-hub"; }
node_netns() { echo "$CLUSTER_NAME-$1"; }
in_netns() { local ns="$1"; shift; nsenter --net="$(netns_path "$ns")" -- "$@"; } # netns command…
in_hub() { in_netns "$(hub_netns)" "$@"; }

# Forwarding on, reverse-path filter loose and no redirects inside one of the cluster's namespaces.
netns_sysctls() {
  in_netns "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.all.send_redirects=0 >/dev/null
}

make_netns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  netns_sysctls "$1"
}

make_network() {
  local hub node other
  hub="$(hub_netns)"
  make_netns "$hub"
  ip -n "$hub" link add br0 type bridge
  ip -n "$hub" addr add "$API_IP/24" dev br0
  ip -n "$hub" link set br0 up
  # The host link: no address on the host's end (not even IPv6 link-local), the hub's end a /32 gateway.
  ip link add "$HOST_LINK" type veth peer name uplink netns "$hub"
  ip link set "$HOST_LINK" addrgenmode none
  ip -n "$hub" addr add "$HUB_GATEWAY/32" dev uplink
  ip -n "$hub" link set uplink up
  ip -n "$hub" route add default dev uplink
  ip link set "$HOST_LINK" up
  ip route add "$CLUSTER_CIDR" via "$HUB_GATEWAY" dev "$HOST_LINK" onlink
  for node in $NODES; do
    make_netns "$(node_netns "$node")"
    ip -n "$hub" link add "$node" type veth peer name eth0 netns "$(node_netns "$node")"
    ip -n "$hub" link set "$node" master br0 up
    ip -n "$(node_netns "$node")" addr add "$(node_ip "$node")/24" dev eth0
    ip -n "$(node_netns "$node")" link set eth0 up
    ip -n "$(node_netns "$node")" route add default via "$API_IP"
    ip -n "$hub" route add "$(node_subnet "$node")" via "$(node_ip "$node")"
  done
  # Pod to pod across nodes: straight to the other node over the bridge, not through the hub.
  for node in $NODES; do
    for other in $NODES; do
      [ "$node" = "$other" ] || ip -n "$(node_netns "$node")" route add "$(node_subnet "$other")" via "$(node_ip "$other")"
    done
  done
}

# Deleting a namespace deletes its interfaces (and with them their veth peers and routes); the kernel frees
# it once its last process is gone, so `teardown` stops every process first.
remove_network() {
  local ns
  for ns in $(hub_netns) $(for node in $NODES; do node_netns "$node"; done); do
    [ -e "$(netns_path "$ns")" ] && { ip netns delete "$ns" || say "could not delete network namespace $ns"; }
  done
  if ip link show "$HOST_LINK" >/dev/null 2>&1; then ip link delete "$HOST_LINK"; fi
  return 0
}
