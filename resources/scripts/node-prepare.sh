#!/usr/bin/env bash
# Prepare a Debian/Ubuntu machine for kubeadm (Kubernetes docs: "Installing kubeadm" and "Container
# runtimes"): kernel modules, sysctls, swap off for good, containerd with the systemd cgroup driver,
# the pkgs.k8s.io repository of one Kubernetes minor, kubelet/kubeadm/kubectl installed and held.
# Each part is skipped when already in place, and says what it changed (KES_CHANGED=...), so a
# rerun changes nothing. Files replaced are kept as <file>.kes-bak first.
# Usage: bash node-prepare.sh MINOR            (MINOR like 1.36)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: node-prepare.sh MINOR" >&2; exit 2; }
minor=$1
case "$minor" in [0-9].[0-9]|[0-9].[0-9][0-9]) ;; *) echo "bad Kubernetes minor: $minor" >&2; exit 2;; esac
export DEBIAN_FRONTEND=noninteractive
changed() { echo "KES_CHANGED=$1"; }
# write FILE CONTENT: only when different; the old file kept as FILE.kes-bak
write() {
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then return 1; fi
  if [ -f "$1" ] && [ ! -e "$1.kes-bak" ]; then cp -p -- "$1" "$1.kes-bak"; fi
  mkdir -p "$(dirname "$1")"
  printf '%s\n' "$2" > "$1.kes-new" && mv -f "$1.kes-new" "$1"
}
apt_install() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
  changed "packages:${missing[*]}"
}

# 1. kernel modules containerd and kube-proxy need, now and at every boot
if write /etc/modules-load.d/k8s.conf $'overlay\nbr_netfilter'; then changed modules-load; fi
for m in overlay br_netfilter; do modprobe "$m"; done

# 2. sysctls: bridged traffic seen by iptables, IPv4 forwarding
if write /etc/sysctl.d/k8s.conf $'net.bridge.bridge-nf-call-iptables  = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward                 = 1'; then changed sysctl; fi
sysctl -q -p /etc/sysctl.d/k8s.conf >&2

# 3. swap off now and after a reboot (the kubelet refuses to start with swap by default)
if [ -n "$(tail -n +2 /proc/swaps 2>/dev/null)" ]; then swapoff -a; changed swapoff; fi
if grep -Eq '^[^#].*[[:space:]]swap[[:space:]]' /etc/fstab 2>/dev/null; then
  [ -e /etc/fstab.kes-bak ] || cp -p /etc/fstab /etc/fstab.kes-bak
  sed -i -E 's/^([^#].*[[:space:]]swap[[:space:]].*)$/# \1  # swap off for the kubelet (kube-etcd-switch)/' /etc/fstab
  changed fstab
fi

# 4. base packages, then containerd with SystemdCgroup = true (kubeadm's kubelet uses the systemd driver)
apt-get update -q >&2
apt_install apt-transport-https ca-certificates curl gpg
apt_install containerd
if ! grep -q 'SystemdCgroup = true' /etc/containerd/config.toml 2>/dev/null; then
  cfg=$(containerd config default | sed -E 's/SystemdCgroup = false/SystemdCgroup = true/')
  write /etc/containerd/config.toml "$cfg" || true
  systemctl restart containerd
  changed containerd-config
fi
systemctl enable containerd >&2 2>&1 || true

# 5. the Kubernetes package repository of this minor (pkgs.k8s.io), its key in /etc/apt/keyrings
key=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
repo="deb [signed-by=$key] https://pkgs.k8s.io/core:/stable:/v$minor/deb/ /"
if [ ! -s "$key" ] || ! grep -qxF "$repo" /etc/apt/sources.list.d/kubernetes.list 2>/dev/null; then
  install -d -m 755 /etc/apt/keyrings
  curl -fsSL "https://pkgs.k8s.io/core:/stable:/v$minor/deb/Release.key" | gpg --dearmor --yes -o "$key"
  chmod 644 "$key"
  write /etc/apt/sources.list.d/kubernetes.list "$repo" || true
  apt-get update -q >&2
  changed kubernetes-repo
fi

# 6. kubelet, kubeadm, kubectl: installed and held (upgrades are kubeadm's job, not apt's)
apt_install kubelet kubeadm kubectl
apt-mark hold kubelet kubeadm kubectl >&2
systemctl enable kubelet >&2 2>&1 || true
echo "KES_KUBEADM=$(kubeadm version -o short 2>/dev/null || echo none)"
echo "KES_PREPARED=1"
