#!/usr/bin/env bash
# Call the Kubernetes API on this master with the credentials already on it (admin.conf), so no
# cluster-admin credential leaves the node. Body (for POST/PUT) comes base64-encoded as an
# argument. The client cert is unpacked into a private temp dir removed on exit.
# The local apiserver is reached on 127.0.0.1 but verified as "kubernetes", a name kubeadm
# always puts in the serving certificate (127.0.0.1 is not in it).
# TARGET "endpoint" calls the server named in admin.conf instead — kubeadm writes the control plane
# endpoint (the load balancer) there — to see the cluster the way kubectl and kubelets see it.
# GETS reads several paths over one connection (the health view: one run per refresh) and prints
# KES_HTTP_<i>/KES_BODY_<i> per path, in order (000: no answer for that one).
# Usage: bash kube-api.sh METHOD API_PATH [BODY_BASE64] [local|endpoint]
#        bash kube-api.sh GETS local|endpoint API_PATH...
set -euo pipefail
method=$1
if [ "$method" = GETS ]; then
  target=${2:-local}; shift 2 || true; paths=("$@"); body=
  [ ${#paths[@]} -gt 0 ] || { echo "GETS needs at least one API path" >&2; exit 2; }
else
  path=$2 body=${3:-} target=${4:-local}; paths=("$path")
fi
conf=/etc/kubernetes/admin.conf
case "$target" in
  local)
    port=$(grep -Eo -- '--secure-port=[0-9]+' /etc/kubernetes/manifests/kube-apiserver.yaml /etc/kubernetes/kes-parked/kube-apiserver.yaml 2>/dev/null | head -n1 | grep -Eo '[0-9]+$' || true)
    port=${port:-6443}
    server="https://kubernetes:$port"
    resolve=(--resolve "kubernetes:$port:127.0.0.1");;
  endpoint)
    server=$(awk '$1 == "server:" { print $2; exit }' "$conf")
    case "$server" in https://*) ;; *) echo "no https server in $conf" >&2; exit 2;; esac
    resolve=();;
  *) echo "bad target $target" >&2; exit 2;;
esac
case "$method" in GET|GETS|POST|PUT|DELETE|PATCH) ;; *) echo "bad method $method" >&2; exit 2;; esac
for p in "${paths[@]}"; do case "$p" in /*) ;; *) echo "API path must start with /" >&2; exit 2;; esac; done
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; chmod 700 "$t"
field() { grep -m1 "$1:" "$conf" | awk '{print $2}' | base64 -d; }
field certificate-authority-data > "$t/ca" 2>/dev/null || true
field client-certificate-data > "$t/crt"
field client-key-data > "$t/key"
ca=(--cacert "$t/ca"); [ -s "$t/ca" ] || ca=(-k)
if [ "$method" = GETS ]; then
  urls=(); i=0
  for p in "${paths[@]}"; do urls+=(-o "$t/body$i" "$server$p"); i=$((i + 1)); done
  codes=$(curl -sS -g "${resolve[@]}" "${ca[@]}" --cert "$t/crt" --key "$t/key" --max-time 20 -w '%{http_code}\n' "${urls[@]}") || true
  i=0
  while read -r code; do
    echo "KES_HTTP_$i=${code:-000}"
    if [ -f "$t/body$i" ]; then echo "KES_BODY_$i=$(base64 -w0 < "$t/body$i")"; fi
    i=$((i + 1))
  done <<< "$codes"
  exit 0
fi
data=()
if [ -n "$body" ]; then printf '%s' "$body" | base64 -d > "$t/req"; data=(-H 'Content-Type: application/json' --data-binary "@$t/req"); fi
code=$(curl -sS "${resolve[@]}" "${ca[@]}" --cert "$t/crt" --key "$t/key" --max-time 20 -X "$method" "${data[@]}" -o "$t/body" -w '%{http_code}' "$server$path") || { echo "KES_HTTP=000"; exit 0; }
echo "KES_HTTP=$code"
echo "KES_BODY=$(base64 -w0 < "$t/body")"
