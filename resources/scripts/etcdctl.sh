#!/usr/bin/env bash
# Run etcdctl (v3 API) against ENDPOINTS with TLS client credentials from files on this node.
# Usage: bash etcdctl.sh ENDPOINTS CACERT CERT KEY [etcdctl args…]
# Example: bash etcdctl.sh https://127.0.0.1:2379 /etc/kubernetes/pki/etcd/ca.crt \
#            /etc/kubernetes/pki/etcd/healthcheck-client.crt /etc/kubernetes/pki/etcd/healthcheck-client.key member list -w json
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: etcdctl.sh ENDPOINTS CACERT CERT KEY args…" >&2; exit 2; }
endpoints=$1 cacert=$2 cert=$3 key=$4; shift 4
ctl=$(command -v etcdctl || true)
for c in /usr/local/bin/etcdctl /opt/kube-etcd-switch/bin/etcdctl; do [ -n "$ctl" ] || { [ -x "$c" ] && ctl=$c; }; done
[ -n "$ctl" ] || { echo "etcdctl not found on $(hostname); install etcd tools first" >&2; exit 127; }
export ETCDCTL_API=3
exec "$ctl" --endpoints="$endpoints" --cacert="$cacert" --cert="$cert" --key="$key" --dial-timeout=3s --command-timeout=15s "$@"
