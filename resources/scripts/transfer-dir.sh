#!/usr/bin/env bash
# Make (or check) the private folder where the app uploads and downloads files on this node:
# /var/lib/kube-etcd-switch/transfer/LOGIN_USER, owned by the SSH login user, mode 0700. A
# non-root login can then move files with SFTP while root scripts read and write them there.
# Usage: bash transfer-dir.sh LOGIN_USER
set -euo pipefail
user=$1
case "$user" in *[!a-z0-9_.-]*|'') echo "bad user name: $user" >&2; exit 2;; esac
base=/var/lib/kube-etcd-switch
install -d -m 0755 -o root -g root "$base" "$base/transfer"
dir="$base/transfer/$user"
# Never follow a symlink someone else planted.
if [ -L "$dir" ] || { [ -e "$dir" ] && [ ! -d "$dir" ]; }; then rm -f "$dir"; fi
install -d -m 0700 -o "$user" "$dir"
echo "KES_DIR=$dir"
echo "KES_FREE_KB=$(df -Pk "$dir" | awk 'NR==2{print $4}')"
