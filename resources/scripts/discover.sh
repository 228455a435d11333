#!/usr/bin/env bash
# Read-only discovery of one node: what a kubeadm control plane and its etcd look like here.
# Prints KEY=VALUE lines between KES_BEGIN/KES_END; multi-line values are base64 (no wrapping).
# Usage: bash discover.sh   (no arguments; changes nothing)
set -u
b64() { if [ -r "$1" ]; then base64 -w0 < "$1"; fi; }
kv() { printf '%s=%s\n' "$1" "$2"; }
tool() { # path of a tool, also looking where the app installs tools
  local t
  for t in "$(command -v "$1" 2>/dev/null)" /usr/local/bin/"$1" /opt/kube-etcd-switch/bin/"$1"; do
    [ -n "$t" ] && [ -x "$t" ] && { echo "$t"; return; }
  done
}
ver() { # first x.y.z in the tool's version output
  { "$1" --version 2>/dev/null || "$1" version 2>/dev/null; } | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1
}

echo KES_BEGIN
kv hostname "$(hostname 2>/dev/null || cat /etc/hostname)"
kv user "$(id -un)"
# CPU architecture: etcd binaries installed on this node must be built for it.
kv machine "$(uname -m 2>/dev/null)"
M=/etc/kubernetes/manifests
kv etcd_manifest "$(b64 $M/etcd.yaml)"
kv apiserver_manifest "$(b64 $M/kube-apiserver.yaml)"
kv admin_conf_server "$(grep -m1 -Eo 'server: *https?://[^ ]+' /etc/kubernetes/admin.conf 2>/dev/null | sed 's/server: *//')"
kv etcd_ca_cert "$(b64 /etc/kubernetes/pki/etcd/ca.crt)"
kv etcd_ca_key_present "$([ -r /etc/kubernetes/pki/etcd/ca.key ] && echo 1 || echo 0)"
kv etcd_unit "$(b64 /etc/systemd/system/etcd.service)"
if command -v systemctl >/dev/null 2>&1 && [ -f /etc/systemd/system/etcd.service ]; then
  kv etcd_unit_active "$(systemctl is-active etcd 2>/dev/null || true)"
fi
# Static pods the app moved aside (stopped), so discovery after a switch still sees them.
kv parked_manifests "$(ls /etc/kubernetes/kes-parked 2>/dev/null | tr '\n' ' ')"
for t in etcd etcdctl etcdutl kubectl; do
  p=$(tool $t)
  kv "tool_$t" "$p"
  if [ -n "$p" ] && [ "$t" != kubectl ]; then kv "version_$t" "$(ver "$p")"; fi
done
kv listening "$( (ss -Hltn 2>/dev/null || true) | awk '{print $4}' | grep -Eo '[0-9]+$' | sort -un | tr '\n' ' ')"
kv disk_var_lib "$(df -Pk /var/lib 2>/dev/null | awk 'NR==2{print $4}')"
echo KES_END
