#!/usr/bin/env bash
# Control a systemd unit the app manages (etcd): reload units, then start/stop/restart it.
# Usage: bash systemd-unit.sh start|stop|restart|enable|disable|status NAME
set -euo pipefail
action=$1 name=$2
case "$name" in etcd) ;; *) echo "refusing to manage unit $name" >&2; exit 2;; esac
systemctl daemon-reload
case "$action" in
  start|stop|restart|enable|disable) systemctl "$action" "$name" ;;
  status) ;;
  *) echo "unknown action $action" >&2; exit 2 ;;
esac
echo "KES_ACTIVE=$(systemctl is-active "$name" 2>/dev/null || true)"
