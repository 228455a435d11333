#!/usr/bin/env bash
# Run etcdctl (v3 API) against ENDPOINTS with TLS client credentials from files on this node.
# Usage: bash etcdctl.sh ENDPOINTS CACERT CERT KEY [etcdctl args…]
# Example: bash etcdctl.sh https://127.0.0.1:2379 /etc/kubernetes/pki/etcd/ca.crt \
#            /etc/kubernetes/pki/etcd/healthcheck-client.crt /etc/kubernetes/pki/etcd/healthcheck-client.key member list -w json
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: etcdctl.sh ENDPOINTS CACERT CERT KEY args…" >&2; exit 2; }
endpoints=$1 cacert=$2 cert=$3 key=$4; shift 4
# etcd tools are called by absolute path: the app passes the paths it discovered on this node as
# KES_ETCDCTL / KES_ETCDUTL (sudo's secure_path leaves /usr/local/bin out on many systems, so PATH
# is not enough); run by hand without them, the script looks where discover.sh looks.
etcd_tool() { # NAME [PATH]: PATH (what the app found on this node), else the first of the usual places
  local c
  if [ -n "${2:-}" ] && [ ! -x "$2" ]; then echo "warning: no $1 at $2 any more (where it was found); looking for it" >&2; fi
  for c in "${2:-}" /usr/local/bin/"$1" /opt/kube-etcd-switch/bin/"$1" "$(command -v "$1" 2>/dev/null)" \
    /usr/local/sbin/"$1" /usr/sbin/"$1" /usr/bin/"$1" /sbin/"$1" /bin/"$1"; do
    case "$c" in /*) if [ -f "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi ;; esac
  done
}
ctl=$(etcd_tool etcdctl "${KES_ETCDCTL:-}")
[ -n "$ctl" ] || { echo "etcdctl not found on $(hostname); install etcd tools first" >&2; exit 127; }
# Only this node's own member, and nothing listens there (its etcd stopped or parked): say so at
# once (exit 3) instead of waiting for the dial timeout. Without ss, etcdctl finds out itself.
local_port=
case "$endpoints" in
  https://127.0.0.1:[0-9]*|https://localhost:[0-9]*|http://127.0.0.1:[0-9]*) case "$endpoints" in *,*) ;; *) local_port=${endpoints##*:} ;; esac ;;
esac
if [ -n "$local_port" ] && command -v ss >/dev/null 2>&1; then
  if ! ss -Hltn "sport = :$local_port" 2>/dev/null | grep -q .; then
    echo "nothing listens on 127.0.0.1:$local_port on $(hostname) (its etcd is stopped or parked)" >&2
    exit 3
  fi
fi
export ETCDCTL_API=3
exec "$ctl" --endpoints="$endpoints" --cacert="$cacert" --cert="$cert" --key="$key" --dial-timeout=3s --command-timeout=15s "$@"
