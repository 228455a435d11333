#!/usr/bin/env bash
# Remove a file the app manages (when bringing back a state in which it did not exist).
# Only paths under the folders the app manages are accepted.
# Usage: bash remove-file.sh PATH
set -euo pipefail
p=$1
case "$p" in
  /etc/kubernetes/manifests/*|/etc/kubernetes/kes-parked/*|/etc/systemd/system/etcd.service|/etc/default/etcd|/etc/etcd/pki/*|/var/lib/kube-etcd-switch/*) ;;
  *) echo "refusing to remove $p: not a file the app manages" >&2; exit 2;;
esac
case "$p" in *..*) echo "refusing path with ..: $p" >&2; exit 2;; esac
rm -f -- "$p"
echo "KES_REMOVED=$p"
