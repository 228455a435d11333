#!/usr/bin/env bash
# Restore one etcd member's data dir from a snapshot. Every member of a cluster must be restored
# from the same snapshot with the same token and the full initial cluster (kubeadm#2641).
# Refuses a non-empty target; restores into TARGET.part and renames it when complete.
# Usage: bash restore-member.sh SNAPSHOT SHA256 NAME INITIAL_CLUSTER TOKEN PEER_URLS DATA_DIR
set -euo pipefail
[ $# -eq 7 ] || { echo "usage: restore-member.sh SNAPSHOT SHA256 NAME INITIAL_CLUSTER TOKEN PEER_URLS DATA_DIR" >&2; exit 2; }
snap=$1 want=$2 name=$3 cluster=$4 token=$5 peers=$6 dir=$7
case "$dir" in /*) ;; *) echo "data dir must be absolute: $dir" >&2; exit 2;; esac
if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then echo "refusing: target data dir $dir is not empty" >&2; exit 4; fi
got=$(sha256sum "$snap" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "snapshot sha256 mismatch on $(hostname): $got != $want" >&2; exit 3; }
rm -rf "$dir.part"
mkdir -p "$(dirname "$dir")"
if command -v etcdutl >/dev/null 2>&1; then
  extra=()
  # Keep watchers from seeing time run backwards (kubernetes#131115), where supported.
  if etcdutl snapshot restore --help 2>&1 | grep -q -- '--bump-revision'; then extra=(--bump-revision 1000000000 --mark-compacted); fi
  echo "restoring with etcdutl ${extra[*]:-}" >&2
  etcdutl snapshot restore "$snap" --name "$name" --initial-cluster "$cluster" --initial-cluster-token "$token" \
    --initial-advertise-peer-urls "$peers" --data-dir "$dir.part" "${extra[@]}" >&2
else
  echo "restoring with etcdctl (etcd 3.4 has no etcdutl)" >&2
  ETCDCTL_API=3 etcdctl snapshot restore "$snap" --name "$name" --initial-cluster "$cluster" --initial-cluster-token "$token" \
    --initial-advertise-peer-urls "$peers" --data-dir "$dir.part" >&2
fi
rmdir "$dir" 2>/dev/null || true
mv "$dir.part" "$dir"
chmod 700 "$dir"
echo "KES_RESTORED=$dir"
