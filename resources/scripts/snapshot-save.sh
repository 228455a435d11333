#!/usr/bin/env bash
# Take an etcd snapshot on this node and describe it. `snapshot save` takes exactly one endpoint.
# Usage: bash snapshot-save.sh ENDPOINT CACERT CERT KEY OUT_FILE [OWNER [--no-describe]]
# OWNER (the SSH login user) gets the file, so a non-root login can download it with SFTP.
# Prints KES_SHA256=…, KES_STATUS=<snapshot status JSON>, KES_ENDPOINT_STATUS=<endpoint status JSON>.
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: snapshot-save.sh ENDPOINT CACERT CERT KEY OUT_FILE [OWNER]" >&2; exit 2; }
endpoint=$1 cacert=$2 cert=$3 key=$4 out=$5 owner=${6:-}
case "$endpoint" in *,*) echo "snapshot save takes exactly one endpoint" >&2; exit 2;; esac
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
etcdctl=$(etcd_tool etcdctl "${KES_ETCDCTL:-}")
etcdutl=$(etcd_tool etcdutl "${KES_ETCDUTL:-}")
[ -n "$etcdctl" ] || { echo "etcdctl not found on $(hostname); install etcd tools first" >&2; exit 127; }
# Scripts run as `bash -s` (one file, no siblings), so the etcdctl call is spelled out here.
ctl() {
  ETCDCTL_API=3 "$etcdctl" --endpoints="$endpoint" --cacert="$cacert" --cert="$cert" --key="$key" \
    --dial-timeout=3s --command-timeout=600s "$@"
}
umask 077
mkdir -p "$(dirname "$out")"
rm -f "$out" "$out.part"
echo "saving snapshot from $endpoint to $out" >&2
ctl snapshot save "$out" >&2   # etcdctl writes $out.part and renames it when complete
[ -z "$owner" ] || chown "$owner" "$out"
echo "KES_ENDPOINT_STATUS=$(ctl endpoint status -w json)"
# The app describes the file (snapshot-status.sh) while it downloads it; by hand, do it here.
if [ "${7:-}" = --no-describe ]; then exit 0; fi
# sha256 and `snapshot status` each read the whole file: run them side by side (the snapshot
# benchmark showed them as a second or more of a ~240 MB snapshot's time).
sum=$(mktemp)
trap 'rm -f "$sum"' EXIT
sha256sum "$out" > "$sum" & sumpid=$!
if [ -n "$etcdutl" ]; then st=$("$etcdutl" snapshot status -w json "$out"); else st=$(ETCDCTL_API=3 "$etcdctl" snapshot status -w json "$out"); fi
wait "$sumpid"
echo "KES_SHA256=$(cut -d' ' -f1 "$sum")"
echo "KES_STATUS=$st"
