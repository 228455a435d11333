#!/usr/bin/env bash
# Remove what the app left in its private transfer folder on this node
# (/var/lib/kube-etcd-switch/transfer/LOGIN_USER, see transfer-dir.sh): snapshot copies
# (restore-ID.db, verify-ID.db, snapshot-ID.db: every secret of the cluster), uploaded files not
# yet put in place (put-ID), etcd release archives (etcd-vX.Y.Z-linux-ARCH.tar.gz), and the .part
# files of transfers that were cut short. The app runs it at the end of every job that used the
# folder (any outcome) and when a cluster is initialized (leftovers of a crash).
# Only regular files directly in that folder whose names the app gives are removed; anything
# else (other names, folders, symlinks) is left alone and named on stderr. Nothing is followed.
# Usage: bash transfer-clean.sh LOGIN_USER
set -euo pipefail
shopt -s extglob nullglob dotglob
[ $# -eq 1 ] || { echo "usage: transfer-clean.sh LOGIN_USER" >&2; exit 2; }
user=$1
case "$user" in *[!a-z0-9_.-]*|'') echo "bad user name: $user" >&2; exit 2;; esac
dir=/var/lib/kube-etcd-switch/transfer/$user
if [ -L "$dir" ] || [ ! -d "$dir" ]; then echo "KES_CLEANED=0"; exit 0; fi
id='+([0-9a-f-])'
n=0
for f in "$dir"/*; do
  b=${f##*/}
  name=${b%.part}
  # shellcheck disable=SC2254
  case "$name" in
    @(restore|verify|snapshot)-$id.db|put-$id|etcd-v+([0-9]).+([0-9]).+([0-9])-linux-+([a-z0-9]).tar.gz) ;;
    *) echo "left alone: $f (not a name the app gives)" >&2; continue ;;
  esac
  if [ -L "$f" ] || [ ! -f "$f" ]; then echo "left alone: $f (not a regular file)" >&2; continue; fi
  rm -f -- "$f"
  echo "KES_REMOVED=$f"
  n=$((n + 1))
done
echo "KES_CLEANED=$n"
