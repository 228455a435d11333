#!/usr/bin/env bash
# Move an etcd data dir aside (never delete data): to /var/lib/kube-etcd-switch/backup.
# Usage: bash move-aside.sh DATA_DIR
set -euo pipefail
dir=$1
case "$dir" in /var/lib/*) ;; *) echo "refusing to move $dir (not under /var/lib)" >&2; exit 2;; esac
case "$dir" in *..*) echo "refusing path with .." >&2; exit 2;; esac
[ -e "$dir" ] || { echo "KES_MOVED="; exit 0; }
install -d -m 0700 /var/lib/kube-etcd-switch/backup
dest="/var/lib/kube-etcd-switch/backup/$(basename "$dir")-$(date -u +%Y%m%dT%H%M%SZ)"
mv "$dir" "$dest"
echo "KES_MOVED=$dest"
