# Certificates and kubeconfigs of the local cluster (sourced by scripts/cluster.sh). openssl, ECDSA P-256:
# a cluster CA (API server, clients, kubelets), a separate etcd CA (only the API server may talk to etcd),
# and the service-account signing key. Everything lives in $PKI and is made once per cluster.

# Signs a certificate with CA: cert_pair NAME CA SUBJECT EXTENDED-KEY-USAGE [SUBJECT-ALT-NAMES]
cert_pair() {
  local name="$1" ca="$2" subject="$3" eku="$4" san="${5:-}"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subject" 2>/dev/null |
    openssl x509 -req -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial -days 3650 -sha256 \
      -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.ext"
}

ca_pair() { # NAME CN
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
}

make_pki() {
  mkdir -p "$PKI" && chmod 700 "$PKI"
  ca_pair ca "reseat-local-kubernetes-ca"
  ca_pair etcd-ca "reseat-local-etcd-ca"
  cert_pair etcd etcd-ca "/CN=etcd" "serverAuth,clientAuth" "IP:$LOOPBACK_IP,DNS:localhost"
  cert_pair apiserver-etcd-client etcd-ca "/CN=kube-apiserver-etcd-client" "clientAuth"
  cert_pair apiserver ca "/CN=kube-apiserver" "serverAuth" \
    "IP:$API_IP,IP:$SERVICE_IP_KUBERNETES,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert_pair apiserver-kubelet-client ca "/O=system:masters/CN=kube-apiserver-kubelet-client" "clientAuth"
  # The aggregation layer's front proxy (as kubeadm makes it): its own CA and the API server's client cert.
  ca_pair front-proxy-ca "reseat-local-front-proxy-ca"
  cert_pair front-proxy-client front-proxy-ca "/CN=front-proxy-client" "clientAuth"
  cert_pair admin ca "/O=system:masters/CN=reseat-local-admin" "clientAuth"
  cert_pair controller-manager ca "/CN=system:kube-controller-manager" "clientAuth"
  cert_pair scheduler ca "/CN=system:kube-scheduler" "clientAuth"
  cert_pair kube-proxy ca "/CN=system:kube-proxy" "clientAuth"
  cert_pair provisioner ca "/CN=system:reseat:node-local-provisioner" "clientAuth"
  local node
  for node in $NODES; do
    cert_pair "$node-client" ca "/O=system:nodes/CN=system:node:$node" "clientAuth"
    cert_pair "$node-serving" ca "/O=system:nodes/CN=system:node:$node" "serverAuth" "IP:$(node_ip "$node"),DNS:$node"
  done
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
  openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  rm -f "$PKI"/*.srl
  chmod 600 "$PKI"/*.key
}

# A kubeconfig with everything embedded, so it can be copied anywhere: kubeconfig FILE CERT-NAME USER
write_kubeconfig() {
  local file="$1" cert="$2" user="$3"
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: reseat-local
  cluster:
    server: https://$API_IP:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$cert.crt")
    client-key-data: $(base64 -w0 "$PKI/$cert.key")
contexts:
- name: reseat-local
  context:
    cluster: reseat-local
    user: $user
current-context: reseat-local
EOF
  chmod 600 "$file"
}

make_kubeconfigs() {
  write_kubeconfig "$KUBECONFIG_PATH" admin reseat-local-admin
  write_kubeconfig "$STATE/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
  write_kubeconfig "$STATE/scheduler.kubeconfig" scheduler system:kube-scheduler
  write_kubeconfig "$STATE/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
  write_kubeconfig "$STATE/provisioner.kubeconfig" provisioner system:reseat:node-local-provisioner
  local node
  for node in $NODES; do write_kubeconfig "$STATE/$node/kubelet.kubeconfig" "$node-client" "system:node:$node"; done
}
