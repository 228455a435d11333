#!/usr/bin/env bash
# Check a snapshot file on this node: sha256 and `snapshot status` (etcdutl, else etcdctl).
# --no-sha256 skips the sha256: the app passes it when it verifies the file's own integrity hash
# (etcd's trailer) on the bytes it downloads, which proves the transfer end to end.
# Usage: bash snapshot-status.sh FILE [EXPECTED_SHA256 | --no-sha256]
set -euo pipefail
file=$1 want=${2:-}
[ -f "$file" ] || { echo "no such file: $file" >&2; exit 1; }
if [ "$want" != --no-sha256 ]; then
  got=$(sha256sum "$file" | cut -d' ' -f1)
  echo "KES_SHA256=$got"
  if [ -n "$want" ] && [ "$got" != "$want" ]; then echo "sha256 mismatch: got $got, expected $want" >&2; exit 3; fi
fi
if command -v etcdutl >/dev/null 2>&1; then st=$(etcdutl snapshot status -w json "$file"); else st=$(ETCDCTL_API=3 etcdctl snapshot status -w json "$file"); fi
echo "KES_STATUS=$st"
