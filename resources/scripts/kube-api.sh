#!/usr/bin/env bash
# Call the Kubernetes API on this master with the credentials already on it (admin.conf), so no
# cluster-admin credential leaves the node. Body (for POST/PUT) comes base64-encoded as an
# argument. The client cert is unpacked into a private temp dir removed on exit.
# The local apiserver is reached on 127.0.0.1 but verified as "kubernetes", a name kubeadm
# always puts in the serving certificate (127.0.0.1 is not in it).
# Usage: bash kube-api.sh METHOD API_PATH [BODY_BASE64]
set -euo pipefail
method=$1 path=$2 body=${3:-}
port=$(grep -Eo -- '--secure-port=[0-9]+' /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/kes-parked/kube-apiserver.yaml 2>/dev/null | head -n1 | grep -Eo '[0-9]+$' || true)
port=${port:-6443}
server="https://kubernetes:$port"
case "$method" in GET|POST|PUT|DELETE|PATCH) ;; *) echo "bad method $method" >&2; exit 2;; esac
case "$path" in /*) ;; *) echo "API path must start with /" >&2; exit 2;; esac
conf=/etc/kubernetes/admin.conf
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; chmod 700 "$t"
field() { grep -m1 "$1:" "$conf" | awk '{print $2}' | base64 -d; }
field certificate-authority-data > "$t/ca" 2>/dev/null || true
field client-certificate-data > "$t/crt"
field client-key-data > "$t/key"
ca=(--cacert "$t/ca"); [ -s "$t/ca" ] || ca=(-k)
data=()
if [ -n "$body" ]; then printf '%s' "$body" | base64 -d > "$t/req"; data=(-H 'Content-Type: application/json' --data-binary "@$t/req"); fi
code=$(curl -sS --resolve "kubernetes:$port:127.0.0.1" "${ca[@]}" --cert "$t/crt" --key "$t/key" --max-time 20 -X "$method" "${data[@]}" -o "$t/body" -w '%{http_code}' "$server$path") || { echo "KES_HTTP=000"; exit 0; }
echo "KES_HTTP=$code"
echo "KES_BODY=$(base64 -w0 < "$t/body")"
