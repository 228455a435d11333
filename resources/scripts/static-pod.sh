#!/usr/bin/env bash
# Stop or start a kubeadm static pod by moving its manifest out of (or back into) the kubelet's
# manifest folder, then wait until its port closes (or opens). Parked manifests are kept in
# /etc/kubernetes/kes-parked so nothing is lost and discovery can see them.
# Usage: bash static-pod.sh park|unpark NAME PORT [TIMEOUT_SECONDS]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: static-pod.sh park|unpark NAME PORT [TIMEOUT]" >&2; exit 2; }
action=$1 name=$2 port=$3 timeout=${4:-90}
case "$name" in *[!a-z0-9-]*|'') echo "bad static pod name: $name" >&2; exit 2;; esac
manifests=/etc/kubernetes/manifests parked=/etc/kubernetes/kes-parked
listening() { ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; }
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
  if [ $want = closed ] && ! listening; then break; fi
  if [ $want = open ] && listening; then break; fi
  if [ "$(date +%s)" -ge "$end" ]; then echo "timed out after ${timeout}s waiting for port $port to be $want" >&2; exit 5; fi
  sleep 0.5
done
echo "KES_PORT_$want=$port"
