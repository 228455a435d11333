#!/usr/bin/env bash
# Stop or start a kubeadm static pod by moving its manifest out of (or back into) the kubelet's
# manifest folder, then wait until its ports close (or open). Parked manifests are kept in
# /etc/kubernetes/kes-parked so nothing is lost and discovery can see them.
# PORTS is one port or a comma list: a stopping etcd closes its client port first and its peer port
# only when it has really stopped (a leader first tries to hand over leadership, for up to ~7 s), and
# a new etcd cannot start while the old one still holds the peer port — so etcd is "2379,2380".
# A kubelet that will not let go (the real one, restarted while the apiserver is unreachable, keeps
# a static pod whose manifest went away until it has synced): when parking, if the ports are still
# open after FALLBACK_SECONDS (default 20 s, at most TIMEOUT/2: a working kubelet closes them within a
# second or two, the apiserver on SIGTERM, etcd after at most a leadership hand-over), the
# pod's containers are stopped through the container runtime (crictl stop + rm), said on stderr;
# if that does not work either, the manifest is put back (nothing changed) and the script fails.
# EXIT_SECONDS (park only, default 0 = do not wait): once the ports are closed, wait this long for
# the pod's containers to exit, then stop them through the runtime. kube-apiserver stops listening
# at once on SIGTERM but exits only 12-30 s later (measured: 1.36), and the kubelet starts no new
# pod of the same name before the old one has exited — so a switch that unparks it 10 s later
# would wait for that. The few seconds given first let requests already accepted finish before
# etcd is snapshotted.
# PORTS may be "secure-port" (below).
# Usage: bash static-pod.sh park|unpark NAME PORTS [TIMEOUT_SECONDS [FALLBACK_SECONDS [EXIT_SECONDS]]]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: static-pod.sh park|unpark NAME PORTS [TIMEOUT [FALLBACK]]" >&2; exit 2; }
action=$1 name=$2 ports=$3 timeout=${4:-90}
case "$timeout" in *[!0-9]*|'') echo "bad timeout: $timeout" >&2; exit 2;; esac
fallback=${5:-$(( timeout / 2 < 20 ? timeout / 2 : 20 ))}
case "$fallback" in *[!0-9]*|'') echo "bad fallback: $fallback" >&2; exit 2;; esac
exit_wait=${6:-0}
case "$exit_wait" in *[!0-9]*|'') echo "bad exit wait: $exit_wait" >&2; exit 2;; esac
case "$name" in *[!a-z0-9-]*|'') echo "bad static pod name: $name" >&2; exit 2;; esac
manifests=/etc/kubernetes/manifests parked=/etc/kubernetes/kes-parked
# "secure-port": the port the manifest itself names (--secure-port, kube-apiserver's default 6443),
# so an apiserver moved off 6443 is still waited for on its own port.
if [ "$ports" = secure-port ]; then
  ports=$(grep -Eho -- '--secure-port=[0-9]+' "$manifests/$name.yaml" "$parked/$name.yaml" 2>/dev/null | head -n1 | grep -Eo '[0-9]+$' || true)
  ports=${ports:-6443}
fi
case "$ports" in *[!0-9,]*|''|,*|*,) echo "bad port list: $ports" >&2; exit 2;; esac
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
# The pod's containers as the runtime sees them (crictl names containers after the manifest's
# container, which kubeadm names after the component).
# crictl by absolute path: installs made without packages put it in /usr/local/bin, which sudo's
# secure_path often leaves out.
crictl_path() {
  local t
  for t in "$(command -v crictl 2>/dev/null)" /usr/local/bin/crictl /usr/bin/crictl /usr/local/sbin/crictl /usr/sbin/crictl /opt/bin/crictl; do
    case "$t" in /*) if [ -f "$t" ] && [ -x "$t" ]; then echo "$t"; return; fi ;; esac
  done
}
crictl_stop() {
  local crictl ids id
  crictl=$(crictl_path)
  [ -n "$crictl" ] || { echo "crictl is not installed: cannot stop $name through the container runtime" >&2; return 1; }
  ids=$("$crictl" ps -q --name "^$name\$" 2>/dev/null || true)
  [ -n "$ids" ] || { echo "crictl lists no running $name container" >&2; return 1; }
  echo "the kubelet did not stop $name within ${fallback}s: stopping its containers through the container runtime (crictl stop + rm)" >&2
  for id in $ids; do "$crictl" stop --timeout 10 "$id" >&2 && "$crictl" rm "$id" >&2 || true; done
}
start=$(date +%s) end=$(( $(date +%s) + timeout )) fell_back=0
while :; do
  if [ $want = closed ] && listening none; then break; fi
  if [ $want = open ] && listening all; then break; fi
  now=$(date +%s)
  if [ $want = closed ] && [ $fell_back = 0 ] && [ $(( now - start )) -ge "$fallback" ]; then
    fell_back=1
    crictl_stop || true
  fi
  if [ "$now" -ge "$end" ]; then
    echo "timed out after ${timeout}s waiting for port(s) $ports to be $want" >&2
    if [ $want = closed ] && [ -f "$parked/$name.yaml" ] && [ ! -e "$manifests/$name.yaml" ]; then
      # neither the kubelet nor the runtime stopped it: leave the node as it was
      mv -f "$parked/$name.yaml" "$manifests/$name.yaml"
      echo "put $name's manifest back: nothing was changed on this node" >&2
    fi
    exit 5
  fi
  sleep 0.2
done
[ $fell_back = 1 ] && echo "KES_RUNTIME_FALLBACK=$name"
if [ $want = closed ] && [ "$exit_wait" -gt 0 ]; then
  crictl=$(crictl_path)
  if [ -z "$crictl" ]; then
    echo "crictl is not installed: not waiting for $name's containers to exit" >&2
  else
    ids=
    for (( i = 0; i < exit_wait * 5; i++ )); do
      ids=$("$crictl" ps -q --name "^$name\$" 2>/dev/null || true)
      [ -n "$ids" ] || break
      sleep 0.2
    done
    if [ -n "$ids" ]; then
      echo "$name still running ${exit_wait}s after its port closed: stopping its containers through the container runtime (crictl stop)" >&2
      for id in $ids; do "$crictl" stop --timeout 0 "$id" >&2 || true; done
      echo "KES_RUNTIME_STOPPED=$name"
    fi
  fi
fi
echo "KES_PORT_$want=$ports"
