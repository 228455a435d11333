#!/usr/bin/env bash
# Undo lb-setup.sh: stop and disable the load balancer's unit, put back the configuration it
# replaced (CONFIG.kes-bak) or remove the one it wrote, and purge the packages it installed
# (listed in /var/lib/kube-etcd-switch/lb-packages) — a package that was there before stays.
# Usage: bash lb-remove.sh UNIT CONFIG
set -euo pipefail
unit=${1:?unit} config=${2:?config}
case "$unit" in *[!a-z0-9.-]*|'') echo "bad unit $unit" >&2; exit 2;; esac
case "$config" in /etc/*) ;; *) echo "config must be under /etc: $config" >&2; exit 2;; esac
systemctl disable --now "$unit" >&2 2>&1 || systemctl stop "$unit" >&2 2>&1 || true
if [ -f "$config.kes-bak" ]; then mv -f -- "$config.kes-bak" "$config"; echo "KES_RESTORED=$config"
elif [ -f "$config" ]; then rm -f -- "$config"; echo "KES_REMOVED=$config"; fi
list=/var/lib/kube-etcd-switch/lb-packages
if [ -s "$list" ]; then
  mapfile -t pkgs < <(sort -u "$list")
  # --autoremove: what apt pulled in for them (nginx-common with nginx.conf) goes too
  DEBIAN_FRONTEND=noninteractive apt-get purge -y --autoremove "${pkgs[@]}" >&2 || echo "could not purge ${pkgs[*]}" >&2
  rm -f -- "$list"
  echo "KES_PURGED=${pkgs[*]}"
fi
