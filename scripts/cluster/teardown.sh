# Tearing the local cluster down (sourced by scripts/cluster.sh): every process, mount, cgroup, network
# namespace, link and file it made — identified by its own pid files, paths, names and prefixes — and nothing
# else (Docker's containers, networks and chains are never looked at). The cluster's iptables rules, bridges,
# veths and routes live in its own network namespaces and go with them. A cluster of the older layout (node
# and API addresses on the host's `lo`, bridges and iptables chains in the host's namespace) is taken down too.

# Sends SIGTERM to a pid, waits up to N seconds for it to be gone (or a zombie: PID 1 reaps slowly), then KILL.
stop_pid() { # pid seconds
  local pid="$1" waited=0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do
    if [ "$waited" -ge "$(($2 * 10))" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    [ "$waited" -ge "$(($2 * 10 + 50))" ] && { say "pid $pid did not exit"; return 1; }
    sleep 0.1; waited=$((waited + 1))
  done
}

# Alive = exists and is not a zombie.
pid_alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

stop_daemon() { # name seconds
  local file="$STATE/pids/$1.pid" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file")"
  # Only a process that is still ours: its command line names this cluster's state dir or binaries.
  if pid_alive "$pid" && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -F -e "$STATE" -e "$K8S_BIN" >/dev/null; then
    stop_pid "$pid" "$2"
  fi
  rm -f "$file"
}

# Processes whose command line contains STRING (e.g. shims started for one node's containerd socket).
pids_mentioning() {
  local p
  for p in /proc/[0-9]*; do
    tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -F -- "$1" >/dev/null && echo "${p#/proc/}"
  done
  return 0
}

# Every container and sandbox of one node's containerd: tasks killed and removed (so that their shims exit
# and clean up after themselves), then the containers.
remove_node_containers() {
  local node="$1" sock ns id
  sock="$(node_socket "$node")"
  [ -S "$sock" ] && timeout 5 ctr --address "$sock" version >/dev/null 2>&1 || return 0
  for ns in $(timeout 10 ctr --address "$sock" namespaces ls -q 2>/dev/null); do
    # CNI result files of this node's sandboxes (CRI's loopback network and the node's bridge network).
    for id in $(timeout 10 ctr --address "$sock" -n "$ns" containers ls -q 2>/dev/null); do
      rm -f "/var/lib/cni/results/cni-loopback-$id-lo" "/var/lib/cni/results/$(cni_network "$node")-$id-eth0"
    done
    for id in $(timeout 10 ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
      timeout 10 ctr --address "$sock" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(timeout 10 ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
      timeout 15 ctr --address "$sock" -n "$ns" tasks rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(timeout 10 ctr --address "$sock" -n "$ns" containers ls -q 2>/dev/null); do
      timeout 10 ctr --address "$sock" -n "$ns" containers rm "$id" >/dev/null 2>&1 || true
    done
  done
}

# Any process still inside a node's cgroups (a container whose shim was lost).
kill_cgroup_members() {
  local node="$1" kind dir pid
  while read -r kind dir; do
    [ -d "$dir$(node_cgroup "$node")" ] || continue
    for pid in $(find "$dir$(node_cgroup "$node")" -name cgroup.procs -exec cat {} + 2>/dev/null); do
      stop_pid "$pid" 0 || true
    done
  done < <(cgroup_mounts)
}

remove_node_cgroups() {
  local node="$1" kind dir
  while read -r kind dir; do
    [ -d "$dir$(node_cgroup "$node")" ] || continue
    find "$dir$(node_cgroup "$node")" -depth -type d -exec rmdir {} + 2>/dev/null ||
      say "could not remove every cgroup under $dir$(node_cgroup "$node")"
  done < <(cgroup_mounts)
}

# Every mount point under the cluster's state dir (kubelet's shared root-dir bind mount, pod volumes,
# container rootfs overlays, shm, network namespaces), deepest first.
unmount_state() {
  local mp
  for mp in $(awk -v s="$STATE" '{ gsub(/\\040/, " ", $5) } index($5, s) == 1 { print $5 }' /proc/self/mountinfo | sort -r | uniq); do
    umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || say "could not unmount $mp"
  done
}

# The CNI network's name, as the cache files in /var/lib/cni/results start (the older layout: reseat-<node>).
cni_network() { if [ "$TEARDOWN_LAYOUT" = legacy ]; then echo "reseat-$1"; else echo "$CLUSTER_NAME-$1"; fi; }

# Older layout only: iptables chains the kubelet (KUBE-*) and the CNI plugins (CNI-*) made in the host's
# namespace, in every table, for IPv4 and IPv6: first the rules in other chains that jump to them, then the chains.
remove_iptables_chains() {
  local tool table rule chain
  for tool in iptables ip6tables; do
    command -v "$tool" >/dev/null 2>&1 || continue
    for table in filter nat mangle raw; do
      "$tool" -t "$table" -S >/dev/null 2>&1 || continue
      while IFS= read -r rule; do
        eval "$tool -t $table -D ${rule#-A }" 2>/dev/null || true
      done < <("$tool" -t "$table" -S | grep -E '^-A ' | grep -vE '^-A (KUBE|CNI)-' | grep -E -- '-j (KUBE|CNI)-')
      for chain in $("$tool" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ { print $2 }'); do
        "$tool" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$tool" -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ { print $2 }'); do
        "$tool" -t "$table" -X "$chain" 2>/dev/null || say "could not remove $tool -t $table chain $chain"
      done
    done
  done
}

# Host paths outside the state dir that the kubelet or CNI write to, and which `up` recorded as not
# existing before the cluster started.
remove_host_leftovers() {
  local node f
  for node in $NODES; do
    if [ "$TEARDOWN_LAYOUT" = legacy ] && ip link show "rsk8s-$node" >/dev/null 2>&1; then ip link delete "rsk8s-$node"; fi
    rm -f /var/lib/cni/results/"$(cni_network "$node")"-* 2>/dev/null || true
  done
  # A results folder that did not exist before `up` holds only this cluster's files (Docker uses no CNI),
  # including loopback results of sandboxes that containerd no longer knows.
  if grep -qxF /var/lib/cni/results "$HOST_PATHS_FILE" 2>/dev/null; then rm -f /var/lib/cni/results/cni-loopback-*-lo; fi
  # /var/log/containers: the kubelet links each container's log there (a fixed path).
  for f in /var/log/containers/*; do
    [ -L "$f" ] && case "$(readlink "$f")" in "$STATE"/*) rm -f "$f" ;; esac
  done
  if [ -f "$HOST_PATHS_FILE" ]; then
    # /run/netns, when `up` made it and no namespace is left in it: `ip netns add` mounted it on itself.
    if grep -qxF /run/netns "$HOST_PATHS_FILE" && [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
      while mountpoint -q /run/netns; do umount /run/netns 2>/dev/null || { say "could not unmount /run/netns"; break; }; done
    fi
    while IFS= read -r f; do rmdir "$f" 2>/dev/null || true; done < <(sort -r "$HOST_PATHS_FILE")
    rm -f "$HOST_PATHS_FILE"
  fi
}

# Older layout only: nf_tables tables (ip/ip6 filter, nat, mangle, raw) that appeared with the cluster and
# are empty again.
remove_new_nft_tables() {
  [ -f "$NFT_TABLES_FILE" ] && command -v nft >/dev/null 2>&1 || return 0
  local family table save
  while read -r _ family table; do
    grep -qxF "table $family $table" "$NFT_TABLES_FILE" && continue
    case "$family" in ip) save=iptables-save ;; ip6) save=ip6tables-save ;; *) continue ;; esac
    case "$table" in filter | nat | mangle | raw) ;; *) continue ;; esac
    [ "$("$save" -t "$table" 2>/dev/null | grep -c '^-A')" = 0 ] && nft delete table "$family" "$table" 2>/dev/null
  done < <(nft list tables 2>/dev/null)
  return 0
}

# Older layout only: the node and API addresses it put on the host's `lo`.
remove_loopback_addresses() {
  local a
  for a in 10.244.0.1 10.244.0.11 10.244.0.12; do
    if ip -o addr show dev lo | grep -F " $a/32 " >/dev/null; then ip addr del "$a/32" dev lo; fi
  done
}

# The layout the state dir was made with: "netns", or "legacy" for the older layout (only in the default
# state dir, whose cluster predates the layout file; a state dir without that file elsewhere is never
# taken for it, so that a second cluster's `down` cannot touch the host's own iptables chains).
teardown_layout() {
  if [ -f "$LAYOUT_FILE" ]; then cat "$LAYOUT_FILE"
  elif [ "$STATE" = "$DEFAULT_STATE" ] && [ -f "$STATE/nft-tables-before" ]; then echo legacy
  else echo netns; fi
}

teardown() {
  local node pid
  TEARDOWN_LAYOUT="$(teardown_layout)"
  NFT_TABLES_FILE="$STATE/nft-tables-before"
  [ "$TEARDOWN_LAYOUT" = legacy ] && CGROUP_PREFIX=reseat
  stop_daemon kube-proxy 5
  for node in $NODES; do stop_daemon "kube-proxy-$node" 5; done
  stop_daemon node-local-provisioner 5
  stop_daemon kube-scheduler 5
  stop_daemon kube-controller-manager 5
  for node in $NODES; do stop_daemon "kubelet-$node" 10; done
  for node in $NODES; do remove_node_containers "$node"; done
  for node in $NODES; do kill_cgroup_members "$node"; done
  for node in $NODES; do stop_daemon "containerd-$node" 10; done
  for node in $NODES; do
    for pid in $(pids_mentioning "$(node_socket "$node")"); do stop_pid "$pid" 5 || true; done
  done
  stop_daemon kube-apiserver 10
  stop_daemon etcd 10
  unmount_state
  for node in $NODES; do remove_node_cgroups "$node"; done
  if [ "$TEARDOWN_LAYOUT" = legacy ]; then
    remove_iptables_chains
    remove_new_nft_tables
    remove_loopback_addresses
  fi
  remove_network
  remove_host_leftovers
  CGROUP_PREFIX="$CLUSTER_NAME"
  rm -rf "$STATE"
}
