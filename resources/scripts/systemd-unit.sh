#!/usr/bin/env bash
# Control a systemd unit the app manages (etcd; containerd and kubelet for "restart the Kubernetes
# runtime"; the load balancer's): reload units, then start/stop/restart it.
# --no-block queues a start/restart and returns at once. The etcd unit is Type=notify and etcd
# reports ready only once its cluster has quorum, so `systemctl start` on one member blocks until
# enough peers run too: the app starts several members together this way, then waits for health.
# Usage: bash systemd-unit.sh start|stop|restart|enable|disable|status NAME [--no-block]
set -euo pipefail
action=$1 name=$2 mode=${3:-}
case "$name" in etcd|containerd|kubelet|haproxy|nginx|envoy) ;; *) echo "refusing to manage unit $name" >&2; exit 2;; esac
case "$mode" in "") nb=() ;; --no-block) nb=(--no-block) ;; *) echo "unknown option $mode" >&2; exit 2 ;; esac
systemctl daemon-reload
case "$action" in
  start|restart) systemctl "${nb[@]}" "$action" "$name" ;;
  stop|enable|disable) systemctl "$action" "$name" ;;
  status) ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
echo "KES_ACTIVE=$(systemctl is-active "$name" 2>/dev/null || true)"
