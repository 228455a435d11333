#!/usr/bin/env bash
# Restore one etcd member's data dir from a snapshot. Every member of a cluster must be restored
# from the same snapshot with the same token and the full initial cluster (kubeadm#2641).
# Refuses a non-empty target; restores into TARGET.part and renames it when complete.
# SERVER_VERSION is the etcd version that will run on the data dir (x.y or x.y.z; empty: unknown).
# The restore tool must be at least that minor: etcd >= 3.5 restores with etcdutl (3.6 has no
# `etcdctl snapshot restore`, and only etcdutl can bump the revision, kubernetes#131115); etcdctl
# is used for a 3.4 server only. A tool that does not fit is refused before anything is written.
# Usage: bash restore-member.sh SNAPSHOT SHA256 NAME INITIAL_CLUSTER TOKEN PEER_URLS DATA_DIR [SERVER_VERSION]
set -euo pipefail
usage="usage: restore-member.sh SNAPSHOT SHA256 NAME INITIAL_CLUSTER TOKEN PEER_URLS DATA_DIR [SERVER_VERSION]"
[ $# -eq 7 ] || [ $# -eq 8 ] || { echo "$usage" >&2; exit 2; }
snap=$1 want=$2 name=$3 cluster=$4 token=$5 peers=$6 dir=$7 server=${8:-}
case "$dir" in /*) ;; *) echo "data dir must be absolute: $dir" >&2; exit 2;; esac
[[ -z "$server" || "$server" =~ ^v?[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || { echo "bad server version: $server" >&2; exit 2; }
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then echo "refusing: target data dir $dir is not empty" >&2; exit 4; fi

ver() { "$1" version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1 || true; }
minor() { # x.y[.z] -> x*1000+y, so minors compare as numbers; empty when there is none
  local v
  v=$(grep -Eo '[0-9]+\.[0-9]+' <<<"$1" | head -n1 || true)
  [ -z "$v" ] || echo $((${v%%.*} * 1000 + ${v#*.}))
}
refuse() { # the tool on this node cannot write a data dir for this server: say how to fix it
  echo "refusing on $(hostname): $1. Install etcd tools${server:+ ${server#v}} on this node (in the app: Settings → etcd tools, then \"Install etcd tools\"), then run the restore again. Nothing was changed." >&2
  exit 5
}
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
utl=$(etcd_tool etcdutl "${KES_ETCDUTL:-}")
ctl=$(etcd_tool etcdctl "${KES_ETCDCTL:-}")
need=$(minor "$server")
tool=
if [ -n "$utl" ]; then
  tool=etcdutl
  if [ -n "$need" ]; then
    have=$(minor "$(ver "$utl")")
    if [ -n "$have" ] && [ "$have" -lt "$need" ]; then
      refuse "etcdutl $(ver "$utl") is older than the etcd server ${server#v}: a data dir must be written by a tool at least as new as the server"
    fi
  fi
elif [ -n "$ctl" ]; then
  tool=etcdctl
  if [ -n "$need" ] && [ "$need" -ge 3005 ]; then
    refuse "etcd ${server#v} restores with etcdutl ${server#v} or newer, and this node has only etcdctl $(ver "$ctl") (etcd 3.4's restore, which cannot bump the revision)"
  fi
  have=$(minor "$(ver "$ctl")")
  if [ -n "$need" ] && [ -n "$have" ] && [ "$have" -lt "$need" ]; then
    refuse "etcdctl $(ver "$ctl") is older than the etcd server ${server#v}"
  fi
else
  refuse "no etcdutl or etcdctl found"
fi
[ -n "$server" ] || echo "warning: server version unknown; restoring with the $tool found here" >&2

got=$(sha256sum "$snap" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "snapshot sha256 mismatch on $(hostname): $got != $want" >&2; exit 3; }
rm -rf "$dir.part"
mkdir -p "$(dirname "$dir")"
if [ "$tool" = etcdutl ]; then
  extra=()
  # Keep watchers from seeing time run backwards (kubernetes#131115), where supported (3.5.x
  # before 3.5.10 lacks the flags).
  if "$utl" snapshot restore --help 2>&1 | grep -q -- '--bump-revision'; then extra=(--bump-revision 1000000000 --mark-compacted)
  else echo "warning: etcdutl $(ver "$utl") cannot bump the revision; watchers may see time run backwards" >&2; fi
  echo "restoring with etcdutl $(ver "$utl") ${extra[*]:-}" >&2
  "$utl" snapshot restore "$snap" --name "$name" --initial-cluster "$cluster" --initial-cluster-token "$token" \
    --initial-advertise-peer-urls "$peers" --data-dir "$dir.part" "${extra[@]}" >&2
else
  echo "restoring with etcdctl $(ver "$ctl") (etcd 3.4 has no etcdutl)" >&2
  ETCDCTL_API=3 "$ctl" snapshot restore "$snap" --name "$name" --initial-cluster "$cluster" --initial-cluster-token "$token" \
    --initial-advertise-peer-urls "$peers" --data-dir "$dir.part" >&2
fi
rmdir "$dir" 2>/dev/null || true
mv "$dir.part" "$dir"
chmod 700 "$dir"
echo "KES_RESTORED=$dir"
