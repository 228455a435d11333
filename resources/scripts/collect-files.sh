#!/usr/bin/env bash
# Print files for a state archive: one line per path, KES_FILE=<path>|<octal mode>|<base64 or ->
# ("-" when the file does not exist). Also prints which data dirs exist.
# Usage: bash collect-files.sh PATH... [-- DATA_DIR...]
set -euo pipefail
dirs=()
while [ $# -gt 0 ]; do
  if [ "$1" = -- ]; then shift; dirs=("$@"); break; fi
  p=$1; shift
  if [ -f "$p" ]; then echo "KES_FILE=$p|$(stat -c %a "$p")|$(base64 -w0 < "$p")"; else echo "KES_FILE=$p|0|-"; fi
done
for d in "${dirs[@]}"; do
  if [ -d "$d" ]; then echo "KES_DIR=$d|1"; else echo "KES_DIR=$d|0"; fi
done
if command -v systemctl >/dev/null 2>&1 && [ -f /etc/systemd/system/etcd.service ]; then
  echo "KES_UNIT_ACTIVE=$(systemctl is-active etcd 2>/dev/null || true)"
fi
