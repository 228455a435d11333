#!/usr/bin/env bash
# Apply a manifest to the cluster with this master's admin.conf (the credential never leaves the
# node): a file the app uploaded (removed afterwards), or an https URL fetched here (a CNI's release
# manifest). Prints what kubectl created or changed.
# Usage: bash kubectl-apply.sh FILE|https://URL
set -euo pipefail
src=${1:?manifest}
conf=/etc/kubernetes/admin.conf
kubectl=$(command -v kubectl || echo /usr/bin/kubectl)
case "$src" in
  https://*)
    t=$(mktemp); trap 'rm -f "$t"' EXIT
    curl -fsSL --proto '=https' --max-time 120 -o "$t" -- "$src"
    "$kubectl" --kubeconfig "$conf" apply -f "$t" ;;
  /var/lib/kube-etcd-switch/transfer/*)
    trap 'rm -f -- "$src"' EXIT
    "$kubectl" --kubeconfig "$conf" apply -f "$src" ;;
  *) echo "manifest must be an https URL or a file in the app's transfer folder: $src" >&2; exit 2 ;;
esac
