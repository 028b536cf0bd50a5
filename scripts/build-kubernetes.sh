#!/usr/bin/env bash
# Builds what the local Kubernetes cluster and the Pulumi Kubernetes provider need, from Go modules only
# (no release binary, no container registry is reachable here). Cached outside the checkout, beside the
# Pulumi CLI; idempotent: a piece that is already built at the wanted version is skipped.
#
#   $CACHE/k8s/v<K8S>/bin/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl}
#   $CACHE/k8s/pause/pause.tar                a locally built pod-sandbox ("pause") image archive
#   $CACHE/k8s/node-local-provisioner-<hash>  the StorageClass's provisioner (scripts/cluster/node-local-provisioner)
#   $CACHE/plugins/pulumi-resource-kubernetes-v<PLUGIN>   Pulumi's Kubernetes resource plugin
#
# Usage: scripts/build-kubernetes.sh [all|binaries|pause|provisioner|plugin|plugin-install|print-env]
#   plugin-install: also registers the plugin in $PULUMI_HOME/plugins (where the engine looks, offline).
set -euo pipefail
CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"

# Kubernetes 1.35.4 is the newest 1.35 the proxy serves and works with Debian's containerd 1.6 (1.36+
# wants containerd 2.x). Its staging modules are served as k8s.io/X v0.35.4.
K8S_VERSION="${K8S_VERSION:-v1.35.4}"
K8S_STAGING_VERSION="v0.${K8S_VERSION#v1.}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
K8S_DIR="$CACHE/k8s/$K8S_VERSION"

# The proxy serves github.com/pulumi/pulumi-kubernetes/provider/v4 only at this pseudo-version (a commit of
# 2026-01-15, after the v4.24.0 tag: its go.mod requires sdk/v4 v4.24.0). npm serves @pulumi/kubernetes 4.24.1
# but not 4.24.0, and the engine matches plugins by the version the npm package declares, so the plugin
# is stamped with the npm version package.json pins.
PK_PROVIDER_MODVER="${PK_PROVIDER_MODVER:-v4.0.0-20260115033456-f47bc2d6f199}"
PACKAGE_JSON="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/package.json"
PK_PLUGIN_VERSION="${PK_PLUGIN_VERSION:-$(sed -n 's/^[[:space:]]*"@pulumi\/kubernetes": "\([0-9][^"]*\)".*/\1/p' "$PACKAGE_JSON")}"
[ -n "$PK_PLUGIN_VERSION" ] || { echo "build-kubernetes: no exact @pulumi/kubernetes version in $PACKAGE_JSON" >&2; exit 1; }
PLUGIN_BIN="$CACHE/plugins/pulumi-resource-kubernetes-v$PK_PLUGIN_VERSION"

export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0
log() { echo "build-kubernetes: $*" >&2; }
need_go() { command -v go >/dev/null 2>&1 || { log "Go (>= 1.24) is needed to build $1 from Go modules: install Go and re-run"; exit 1; }; }

# ---- etcd + Kubernetes binaries -------------------------------------------------------------------------
build_binaries() {
  local bin="$K8S_DIR/bin" want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl) missing=()
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || missing+=("$b"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_go "Kubernetes"
  mkdir -p "$bin"
  log "building ${missing[*]} ($K8S_VERSION, etcd $ETCD_VERSION) from Go modules — first run ~6 min on 2 cores"
  local kdir="$CACHE/build/k8s-$K8S_VERSION"
  mkdir -p "$kdir"
  if [ ! -f "$kdir/go.sum" ]; then
    cat >"$kdir/go.mod" <<MOD
module reseat.local/k8sbins

go 1.24
MOD
    cat >"$kdir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging/...; replace
    # exactly those (not other v0.0.0-… pseudo-versions, which the proxy refuses) with their served release.
    local gomod
    gomod="$(cd "$kdir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [ -f "$gomod" ] || { log "go mod download k8s.io/kubernetes@$K8S_VERSION failed"; exit 1; }
    local staged
    staged="$(awk '/=> \.\/staging\// { for (i = 1; i <= NF; i++) if ($i ~ /^k8s\.io\//) { print $i; break } }' "$gomod")"
    [ -n "$staged" ] || { log "found no staging replaces in $gomod"; exit 1; }
    (cd "$kdir" &&
      for m in $staged; do go mod edit -replace "$m=$m@$K8S_STAGING_VERSION"; done &&
      go mod edit -require "k8s.io/kubernetes@$K8S_VERSION" &&
      go mod tidy >&2)
  fi
  local minor="${K8S_VERSION#v1.}" ldflags
  minor="${minor%%.*}"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
  ldflags="$ldflags -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  for b in "${missing[@]}"; do
    [ "$b" = etcd ] && continue
    log "go build $b"
    (cd "$kdir" && go build -trimpath -ldflags "$ldflags" -o "$bin/$b.tmp" "k8s.io/kubernetes/cmd/$b") && mv "$bin/$b.tmp" "$bin/$b"
  done
  if [[ " ${missing[*]} " == *" etcd "* ]]; then build_etcd "$bin"; fi
}

# `go install go.etcd.io/etcd/server/v3@…` is refused (its go.mod has `replace => ../api`): a wrapper main.
build_etcd() {
  local bin="$1" edir="$CACHE/build/etcd-$ETCD_VERSION"
  mkdir -p "$edir"
  cat >"$edir/go.mod" <<MOD
module reseat.local/etcd

go 1.24
MOD
  cat >"$edir/main.go" <<'GO'
// etcd's own main, as a wrapper module (the server module cannot be `go install`ed directly).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  log "go build etcd"
  (cd "$edir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 && go mod tidy >&2 &&
    go build -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" .) && mv "$bin/etcd.tmp" "$bin/etcd"
}

# ---- pause image ------------------------------------------------------------------------------------------
# No registry: the pod sandbox image is a tiny static Go binary that waits for a signal (and reaps zombies
# when it is PID 1), packed as an OCI image archive that `ctr images import` reads.
PAUSE_REF="reseat.local/pause:3.10"
build_pause() {
  local dir="$CACHE/k8s/pause" out="$CACHE/k8s/pause/pause.tar"
  [ -s "$out" ] && return 0
  need_go "the pause image"
  log "building the pause image $PAUSE_REF"
  local src="$CACHE/build/pause"
  rm -rf "$src" "$dir/layout" && mkdir -p "$src" "$dir/layout/rootfs"
  cat >"$src/go.mod" <<'MOD'
module reseat.local/pause

go 1.24
MOD
  cat >"$src/main.go" <<'GO'
// The pod sandbox process: holds the pod's namespaces until told to stop; reaps orphans as PID 1.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s == syscall.SIGCHLD {
			for {
				var status syscall.WaitStatus
				if pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil); pid <= 0 || err != nil {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
GO
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$dir/layout/rootfs/pause" .)
  pack_oci_image "$dir/layout" "$PAUSE_REF" '["/pause"]' >"$out.tmp" && mv "$out.tmp" "$out"
}

# Writes an OCI image-layout tar of DIR/rootfs with ENTRYPOINT to stdout (sha256 digests, no registry).
pack_oci_image() { # dir ref entrypoint-json
  local dir="$1" ref="$2" entry="$3" blobs="$1/oci/blobs/sha256"
  rm -rf "$dir/oci" && mkdir -p "$blobs"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir/rootfs" -cf "$dir/layer.tar" .
  local diff_id layer layer_size cfg cfg_digest cfg_size man man_digest man_size
  diff_id="$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)"
  gzip -n -c "$dir/layer.tar" >"$dir/layer.tgz"
  layer="$(sha256sum "$dir/layer.tgz" | cut -d' ' -f1)"; layer_size="$(stat -c %s "$dir/layer.tgz")"
  mv "$dir/layer.tgz" "$blobs/$layer"
  cfg="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":$entry,\"User\":\"65535:65535\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]}}"
  printf '%s' "$cfg" >"$dir/cfg.json"
  cfg_digest="$(sha256sum "$dir/cfg.json" | cut -d' ' -f1)"; cfg_size="$(stat -c %s "$dir/cfg.json")"
  mv "$dir/cfg.json" "$blobs/$cfg_digest"
  man="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cfg_digest\",\"size\":$cfg_size},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer\",\"size\":$layer_size}]}"
  printf '%s' "$man" >"$dir/man.json"
  man_digest="$(sha256sum "$dir/man.json" | cut -d' ' -f1)"; man_size="$(stat -c %s "$dir/man.json")"
  mv "$dir/man.json" "$blobs/$man_digest"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man_digest" "$man_size" "$ref" "${ref##*:}" >"$dir/oci/index.json"
  rm -f "$dir/layer.tar"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir/oci" -cf - .
}

# ---- node-local volume provisioner (source in this repository) --------------------------------------------
PROVISIONER_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster/node-local-provisioner"
provisioner_bin() { echo "$CACHE/k8s/node-local-provisioner-$(cat "$PROVISIONER_SRC/go.sum" "$PROVISIONER_SRC/main.go" | sha256sum | cut -c1-12)"; }
build_provisioner() {
  local out; out="$(provisioner_bin)"
  [ -x "$out" ] && return 0
  need_go "the node-local volume provisioner"
  log "building the node-local volume provisioner"
  mkdir -p "$CACHE/k8s"
  GOFLAGS="${GOFLAGS/-mod=mod/-mod=readonly}" go build -C "$PROVISIONER_SRC" -trimpath -ldflags "-s -w" -o "$out.tmp" . && mv "$out.tmp" "$out"
}

# ---- Pulumi Kubernetes resource plugin -------------------------------------------------------------------
build_plugin() {
  if [ -x "$PLUGIN_BIN" ]; then return 0; fi
  need_go "pulumi-resource-kubernetes"
  log "building pulumi-resource-kubernetes v$PK_PLUGIN_VERSION from Go modules — first run ~11 min on 2 cores"
  local dir="$CACHE/build/pulumi-resource-kubernetes"
  mkdir -p "$dir/gen" "$CACHE/plugins"
  cat >"$dir/go.mod" <<MOD
module reseat.local/pulumiresourcekubernetes

go 1.24.7
MOD
  # Upstream's main embeds schema-embed.json and terraform-mapping-embed.json, which its generate.go makes
  # from schema.json/terraform-mapping.json (version stamped in) and which are not in the module zip. This
  # wrapper's main does the same with its own embeds.
  cat >"$dir/main.go" <<'GO'
// pulumi-resource-kubernetes, as upstream's cmd/pulumi-resource-kubernetes/main.go, with the generated
// schema and Terraform mapping embedded from this wrapper module.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
GO
  # The generator: upstream's generate.go stamps the version into the schema; plain JSON does the same here.
  cat >"$dir/gen/main.go" <<'GO'
//go:build ignore

// Stamps the plugin version into upstream's schema.json and compacts both JSON files for embedding.
package main

import (
	"encoding/json"
	"log"
	"os"
)

func compact(from, to string, edit func(map[string]any)) {
	raw, err := os.ReadFile(from)
	if err != nil {
		log.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		log.Fatalf("%s: %v", from, err)
	}
	edit(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(to, out, 0o644); err != nil {
		log.Fatal(err)
	}
}

func main() {
	src, version := os.Args[1], os.Args[2]
	compact(src+"/schema.json", "schema-embed.json", func(d map[string]any) { d["version"] = version })
	compact(src+"/terraform-mapping.json", "terraform-mapping-embed.json", func(map[string]any) {})
}
GO
  local src
  (cd "$dir" && go get "github.com/pulumi/pulumi-kubernetes/provider/v4@$PK_PROVIDER_MODVER" >&2)
  src="$(cd "$dir" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)/cmd/pulumi-resource-kubernetes"
  (cd "$dir" && go run gen/main.go "$src" "$PK_PLUGIN_VERSION" && go mod tidy >&2 &&
    go build -trimpath -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PK_PLUGIN_VERSION" \
      -o "$PLUGIN_BIN.tmp" .) && mv "$PLUGIN_BIN.tmp" "$PLUGIN_BIN"
}

# The engine, with automatic acquisition disabled, looks for resource plugins in PULUMI_HOME/plugins/
# resource-<name>-v<version>/ (a directory with a `.partial` sibling is an unfinished install and ignored).
# A symlink keeps one copy of the 166 MB binary.
install_plugin() {
  build_plugin
  local home="${PULUMI_HOME:-$CACHE/pulumi-home}" dir
  dir="$home/plugins/resource-kubernetes-v$PK_PLUGIN_VERSION"
  if [ "$(readlink "$dir/pulumi-resource-kubernetes" 2>/dev/null)" != "$PLUGIN_BIN" ] || [ -e "$dir.partial" ]; then
    mkdir -p "$dir"
    ln -sfn "$PLUGIN_BIN" "$dir/pulumi-resource-kubernetes"
    rm -f "$dir.partial"
  fi
}

# One build at a time (two checkouts bootstrapping at once would otherwise build the same pieces twice).
if [ "${1:-all}" != print-env ]; then
  mkdir -p "$CACHE/k8s"
  exec 8>"$CACHE/k8s/build.lock"
  flock 8
fi

case "${1:-all}" in
  all) build_binaries; build_pause; build_provisioner; install_plugin ;;
  cluster) build_binaries; build_pause; build_provisioner ;;
  binaries) build_binaries ;;
  pause) build_pause ;;
  provisioner) build_provisioner ;;
  plugin) build_plugin ;;
  plugin-install) install_plugin ;;
  print-env)
    printf 'K8S_VERSION=%q\nK8S_BIN=%q\nPAUSE_TAR=%q\nPAUSE_REF=%q\nPROVISIONER_BIN=%q\nPLUGIN_BIN=%q\nPK_PLUGIN_VERSION=%q\n' \
      "$K8S_VERSION" "$K8S_DIR/bin" "$CACHE/k8s/pause/pause.tar" "$PAUSE_REF" "$(provisioner_bin)" "$PLUGIN_BIN" "$PK_PLUGIN_VERSION" ;;
  *) log "usage: $0 [all|cluster|binaries|pause|provisioner|plugin|plugin-install|print-env]"; exit 2 ;;
esac
