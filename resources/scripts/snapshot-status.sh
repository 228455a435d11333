#!/usr/bin/env bash
# Check a snapshot file on this node: sha256 and `snapshot status` (etcdutl, else etcdctl).
# --no-sha256 skips the sha256: the app passes it when it verifies the file's own integrity hash
# (etcd's trailer) on the bytes it downloads, which proves the transfer end to end.
# Usage: bash snapshot-status.sh FILE [EXPECTED_SHA256 | --no-sha256]
set -euo pipefail
file=$1 want=${2:-}
[ -f "$file" ] || { echo "no such file: $file" >&2; exit 1; }
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
if [ "$want" != --no-sha256 ]; then
  got=$(sha256sum "$file" | cut -d' ' -f1)
  echo "KES_SHA256=$got"
  if [ -n "$want" ] && [ "$got" != "$want" ]; then echo "sha256 mismatch: got $got, expected $want" >&2; exit 3; fi
fi
etcdutl=$(etcd_tool etcdutl "${KES_ETCDUTL:-}")
etcdctl=$(etcd_tool etcdctl "${KES_ETCDCTL:-}")
if [ -n "$etcdutl" ]; then st=$("$etcdutl" snapshot status -w json "$file")
elif [ -n "$etcdctl" ]; then st=$(ETCDCTL_API=3 "$etcdctl" snapshot status -w json "$file")
else echo "no etcdutl or etcdctl found on $(hostname); install etcd tools first" >&2; exit 127; fi
echo "KES_STATUS=$st"
