#!/usr/bin/env bash
# Prepare a node for an external etcd member: the PKI folder (0700), the parent of the data dir,
# and a backup folder for data dirs moved aside. Only folders the app owns get a mode; a folder that
# already exists and is not ours (the data dir's parent, usually /var/lib) is never changed. Refuses a non-empty data dir (never overwrite
# someone's data) unless it belongs to our own etcd unit.
# Usage: bash prepare-external.sh DATA_DIR
set -euo pipefail
dir=$1
case "$dir" in /*) ;; *) echo "data dir must be absolute" >&2; exit 2;; esac
install -d -m 0700 /etc/etcd/pki
parent=${dir%/*}; parent=${parent:-/}
[ -d "$parent" ] || mkdir -p -m 0755 "$parent"   # created only when missing; never chmod an existing one
install -d -m 0700 /var/lib/kube-etcd-switch/backup
if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
  if ! grep -qs "ETCD_DATA_DIR=\"$dir\"" /etc/default/etcd; then
    echo "refusing: $dir exists and is not empty (not ours)" >&2; exit 4
  fi
fi
echo "KES_READY=$dir"
