#!/usr/bin/env bash
# One-command setup for a fresh Debian 12 machine (or CI): system packages the tests need, then
# the npm dependencies. Safe to rerun. Needs root (or sudo) for apt.
#   bash scripts/setup.sh          # everything
#   SKIP_APT=1 bash scripts/setup.sh  # only npm (+ the lab binaries)
#   SKIP_LAB_BINARIES=1 bash scripts/setup.sh  # without the lab's Go-built Kubernetes/etcd
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # browser tests (Playwright drives Debian's Chromium; we never download a browser)
  chromium
  # real sshd for SSH integration tests and the lab hosts
  openssh-server openssh-sftp-server openssh-client
  # keychain: keytar builds against libsecret; tests run a throwaway gnome-keyring in dbus
  libsecret-1-dev gnome-keyring dbus dbus-x11
  # lab: real etcd, load balancers, PKI, namespaces
  etcd-server etcd-client haproxy nginx libnginx-mod-stream sudo iproute2 openssl procps psmisc util-linux
  # lab, real-kubelet mode (`--kubelet real`): container runtime + bridge CNI, run only inside lab hosts
  containerd runc containernetworking-plugins
  # native module builds (node-gyp)
  python3 make g++
)

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

if [ "${SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    # Debian starts daemons on install; the lab runs its own copies inside network namespaces and
    # nothing may be started in the root namespace. policy-rc.d exit 101 = "don't start" (restored after).
    restore_policy=""
    if [ -e /usr/sbin/policy-rc.d ]; then
      restore_policy=$(mktemp); $SUDO cp -p /usr/sbin/policy-rc.d "$restore_policy"
    fi
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    for i in 1 2 3; do
      $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq && break || { echo "apt-get update failed (try $i)"; sleep 10; }
    done
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
    if [ -n "$restore_policy" ]; then $SUDO cp -p "$restore_policy" /usr/sbin/policy-rc.d; rm -f "$restore_policy"
    else $SUDO rm -f /usr/sbin/policy-rc.d; fi
  fi
  # containerd's package enables containerd.service: on this machine it must stay off (the lab starts
  # containerd inside its hosts only). Without systemd running, `systemctl disable` may fail: remove
  # the enablement link by hand too.
  if [ -e /lib/systemd/system/containerd.service ]; then
    if [ -d /run/systemd/system ]; then $SUDO systemctl disable --now containerd.service >/dev/null 2>&1 || true; fi
    $SUDO rm -f /etc/systemd/system/multi-user.target.wants/containerd.service
  fi
fi

# The Electron binary cannot be downloaded in locked-down environments; the app is built and tested
# without it (headless web mode). On a desktop with network access, unset this to run `npm start`.
export ELECTRON_SKIP_BINARY_DOWNLOAD="${ELECTRON_SKIP_BINARY_DOWNLOAD:-1}"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
# keytar/node-pty are N-API modules built from source by their install scripts (allowScripts in
# package.json); make sure the builds exist.
for m in keytar/build/Release/keytar.node node-pty/build/Release/pty.node; do
  [ -f "node_modules/$m" ] || { echo "setup: rebuilding ${m%%/*}"; npm rebuild "${m%%/*}"; }
done
# The test lab's real Kubernetes 1.36 and etcd 3.6/3.5/3.4 binaries: built from their Go modules (or
# fetched from Debian's newer suites) into a cache outside the repo; only what is missing is built
# (a cold build takes ~12 min on 2 cores, a warm check well under a second); also the real kubelet,
# crictl and pause of the lab's real-kubelet mode.
if [ "${SKIP_LAB_BINARIES:-0}" != 1 ]; then
  if command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ]; then
    bash test/lab/build-binaries.sh
  else
    echo "setup: no Go toolchain: the lab's Kubernetes/etcd binaries were not built (lab and system tests need them)"
  fi
fi
echo "setup: done"
