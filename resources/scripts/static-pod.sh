#!/usr/bin/env bash
# Stop or start a kubeadm static pod by moving its manifest out of (or back into) the kubelet's
# manifest folder, then wait until its ports close (or open). Parked manifests are kept in
# /etc/kubernetes/kes-parked so nothing is lost and discovery can see them.
# PORTS is one port or a comma list: a stopping etcd closes its client port first and its peer port
# only when it has really stopped (a leader first tries to hand over leadership, for up to ~7 s), and
# a new etcd cannot start while the old one still holds the peer port — so etcd is "2379,2380".
# Usage: bash static-pod.sh park|unpark NAME PORTS [TIMEOUT_SECONDS]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: static-pod.sh park|unpark NAME PORTS [TIMEOUT]" >&2; exit 2; }
action=$1 name=$2 ports=$3 timeout=${4:-90}
case "$name" in *[!a-z0-9-]*|'') echo "bad static pod name: $name" >&2; exit 2;; esac
case "$ports" in *[!0-9,]*|''|,*|*,) echo "bad port list: $ports" >&2; exit 2;; esac
manifests=/etc/kubernetes/manifests parked=/etc/kubernetes/kes-parked
# all: every port listens; none: no port listens
listening() {
  local p n=0 total=0
  for p in ${ports//,/ }; do total=$((total + 1)); if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then n=$((n + 1)); fi; done
  case $1 in all) [ $n -eq $total ];; none) [ $n -eq 0 ];; esac
}
mkdir -p "$parked"
case "$action" in
  park)
    if [ -f "$manifests/$name.yaml" ]; then mv -f "$manifests/$name.yaml" "$parked/$name.yaml"; echo "parked $name" >&2
    elif [ -f "$parked/$name.yaml" ]; then echo "$name already parked" >&2
    else echo "no manifest for $name" >&2; fi
    want=closed ;;
  unpark)
    if [ -f "$parked/$name.yaml" ]; then mv -f "$parked/$name.yaml" "$manifests/$name.yaml"; echo "unparked $name" >&2
    elif [ -f "$manifests/$name.yaml" ]; then echo "$name already in place" >&2
    else echo "no parked manifest for $name" >&2; exit 1; fi
    want=open ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
end=$(( $(date +%s) + timeout ))
while :; do
  if [ $want = closed ] && listening none; then break; fi
  if [ $want = open ] && listening all; then break; fi
  if [ "$(date +%s)" -ge "$end" ]; then echo "timed out after ${timeout}s waiting for port(s) $ports to be $want" >&2; exit 5; fi
  sleep 0.2
done
echo "KES_PORT_$want=$ports"
