#!/usr/bin/env bash
# Take a node out of the cluster through this master's admin.conf: drain it (cordon, evict its
# pods; DaemonSet pods stay, as kubectl does), or delete its Node object.
# Usage: bash kubectl-node.sh drain|delete NODE_NAME
set -euo pipefail
action=${1:?action} node=${2:?node name}
case "$node" in *[!a-z0-9.-]*|'') echo "bad node name: $node" >&2; exit 2;; esac
kubectl=$(command -v kubectl || echo /usr/bin/kubectl)
k() { "$kubectl" --kubeconfig /etc/kubernetes/admin.conf "$@"; }
case "$action" in
  drain)
    if ! k get node "$node" >/dev/null 2>&1; then echo "no node $node in the cluster: nothing to drain" >&2; exit 0; fi
    k drain "$node" --ignore-daemonsets --delete-emptydir-data --force --timeout=180s ;;
  delete)
    k delete node "$node" --ignore-not-found ;;
  *) echo "usage: kubectl-node.sh drain|delete NODE" >&2; exit 2 ;;
esac
