#!/usr/bin/env bash
# GET a Kubernetes API path from this master with the credentials already on it (admin.conf),
# so no cluster-admin credential ever leaves the node. The client cert is unpacked into a
# private temp dir that is removed on exit.
# Usage: bash kube-get.sh API_PATH [SERVER]   (SERVER defaults to https://127.0.0.1:6443)
set -euo pipefail
path=$1 server=${2:-https://127.0.0.1:6443}
conf=/etc/kubernetes/admin.conf
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; chmod 700 "$t"
field() { grep -m1 "$1:" "$conf" | awk '{print $2}' | base64 -d; }
field certificate-authority-data > "$t/ca" 2>/dev/null || true
field client-certificate-data > "$t/crt"
field client-key-data > "$t/key"
ca=(--cacert "$t/ca"); [ -s "$t/ca" ] || ca=(-k)
code=$(curl -sS "${ca[@]}" --cert "$t/crt" --key "$t/key" --max-time 10 -o "$t/body" -w '%{http_code}' "$server$path") || { echo "KES_HTTP=000"; exit 0; }
echo "KES_HTTP=$code"
echo "KES_BODY=$(base64 -w0 < "$t/body")"
