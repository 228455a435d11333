#!/usr/bin/env bash
# Install and configure the apiservers' load balancer: install its packages, check the new config
# (uploaded to STAGED) with the load balancer's own checker BEFORE it replaces anything, keep the
# old config as CONFIG.kes-bak, put the new one in place, enable and (re)start the unit, and wait
# until PORT listens. A config the checker refuses changes nothing.
# Usage: bash lb-setup.sh UNIT CONFIG STAGED PORT PACKAGES -- CHECK_ARGV...
#   PACKAGES: comma list (e.g. haproxy or nginx,libnginx-mod-stream); CHECK_ARGV uses STAGED.
set -euo pipefail
[ $# -ge 6 ] && [ "$6" = -- ] || { echo "usage: lb-setup.sh UNIT CONFIG STAGED PORT PACKAGES -- CHECK..." >&2; exit 2; }
unit=$1 config=$2 staged=$3 port=$4 packages=$5; shift 6
case "$unit" in *[!a-z0-9.-]*|'') echo "bad unit $unit" >&2; exit 2;; esac
case "$port" in *[!0-9]*|'') echo "bad port $port" >&2; exit 2;; esac
case "$packages" in *[!a-z0-9.,+-]*|'') echo "bad package list $packages" >&2; exit 2;; esac
case "$config" in /etc/*) ;; *) echo "config must be under /etc: $config" >&2; exit 2;; esac
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in ${packages//,/ }; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  # envoy is not in Debian/Ubuntu: its own apt repository, as envoyproxy.io documents it
  if [[ " ${missing[*]} " == *" envoy "* ]] && [ ! -f /etc/apt/sources.list.d/envoy.list ]; then
    install -d -m 755 /etc/apt/keyrings
    curl -fsSL https://apt.envoyproxy.io/signing.key | gpg --dearmor --yes -o /etc/apt/keyrings/envoy-keyring.gpg
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    case "$codename" in *[!a-z]*|'') echo "cannot tell this system's release codename for the envoy repository" >&2; exit 2;; esac
    echo "deb [signed-by=/etc/apt/keyrings/envoy-keyring.gpg] https://apt.envoyproxy.io $codename main" > /etc/apt/sources.list.d/envoy.list
    echo "KES_CHANGED=envoy-repo"
  fi
  apt-get update -q >&2
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
  # remembered, so "clean up everything" removes only what this app installed (lb-remove.sh)
  install -d -m 755 /var/lib/kube-etcd-switch
  printf '%s\n' "${missing[@]}" >> /var/lib/kube-etcd-switch/lb-packages
  echo "KES_CHANGED=packages:${missing[*]}"
fi
echo "checking the new configuration: $*" >&2
"$@" >&2 || { echo "the load balancer's checker refused the new configuration; nothing was changed" >&2; rm -f -- "$staged"; exit 3; }
if [ -f "$config" ] && cmp -s "$config" "$staged"; then
  rm -f -- "$staged"; echo "configuration unchanged" >&2
else
  if [ -f "$config" ] && [ ! -e "$config.kes-bak" ]; then cp -p -- "$config" "$config.kes-bak"; fi
  install -D -m 644 "$staged" "$config.kes-new" && mv -f "$config.kes-new" "$config" && rm -f -- "$staged"
  echo "KES_CHANGED=config:$config"
fi
systemctl enable "$unit" >&2 2>&1 || true
systemctl restart "$unit" >&2
for _ in $(seq 1 50); do
  if ss -Hltn "sport = :$port" | grep -q .; then echo "KES_LISTENING=$port"; exit 0; fi
  sleep 0.2
done
echo "$unit does not listen on $port after 10 s" >&2
systemctl status "$unit" --no-pager >&2 2>&1 || true
exit 4
