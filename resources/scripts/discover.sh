#!/usr/bin/env bash
# Read-only discovery of one node: what a kubeadm control plane and its etcd look like here.
# Prints KEY=VALUE lines between KES_BEGIN/KES_END; multi-line values are base64 (no wrapping).
# Usage: bash discover.sh   (no arguments; changes nothing)
set -u
b64() { if [ -r "$1" ]; then base64 -w0 < "$1"; fi; }
kv() { printf '%s=%s\n' "$1" "$2"; }
tool() { # absolute path of a tool: where the app installs tools first, then PATH, then the usual
  # places (under sudo, secure_path often lacks /usr/local/bin); the app then calls it by this path
  local t
  for t in /usr/local/bin/"$1" /opt/kube-etcd-switch/bin/"$1" "$(command -v "$1" 2>/dev/null)" \
    /usr/local/sbin/"$1" /usr/sbin/"$1" /usr/bin/"$1" /sbin/"$1" /bin/"$1"; do
    case "$t" in /*) if [ -f "$t" ] && [ -x "$t" ]; then echo "$t"; return; fi ;; esac
  done
}
ver() { # first x.y.z in the tool's version output
  { "$1" --version 2>/dev/null || "$1" version 2>/dev/null; } | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1
}

echo KES_BEGIN
kv hostname "$(hostname 2>/dev/null || cat /etc/hostname)"
kv user "$(id -un)"
# Identity: one machine reached by another name or NIC is still one master (the app matches etcd
# peer URLs and API node addresses against these, and compares machine-id + hostname).
kv machine_id "$(cat /etc/machine-id 2>/dev/null || true)"
kv addresses "$( { hostname -I 2>/dev/null || ip -o addr show 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4 }'; } | tr '\n' ' ')"
# CPU architecture: etcd binaries installed on this node must be built for it.
kv machine "$(uname -m 2>/dev/null)"
M=/etc/kubernetes/manifests
# Where this kubelet reads static pods (kubeadm's KubeletConfiguration); the app refuses a node
# whose kubelet looks elsewhere rather than edit files no kubelet reads.
kv static_pod_path "$(awk '$1 == "staticPodPath:" { print $2; exit }' /var/lib/kubelet/config.yaml 2>/dev/null | tr -d '"')"
kv etcd_manifest "$(b64 $M/etcd.yaml)"
kv apiserver_manifest "$(b64 $M/kube-apiserver.yaml)"
kv admin_conf_server "$(grep -m1 -Eo 'server: *https?://[^ ]+' /etc/kubernetes/admin.conf 2>/dev/null | sed 's/server: *//')"
# kubeadm's etcd PKI folder, as the manifests name it (certificatesDir may not be the default):
# etcd's --trusted-ca-file (active or parked), else the apiserver's --etcd-cafile.
flag_dir() { grep -Eho -- "--$1=[^ \"]+" "${@:2}" 2>/dev/null | head -n1 | sed 's/^[^=]*=//; s#/[^/]*$##'; }
pki=$(flag_dir trusted-ca-file $M/etcd.yaml /etc/kubernetes/kes-parked/etcd.yaml)
[ -n "$pki" ] || pki=$(flag_dir etcd-cafile $M/kube-apiserver.yaml /etc/kubernetes/kes-parked/kube-apiserver.yaml)
case "$pki" in /*) ;; *) pki=/etc/kubernetes/pki/etcd ;; esac
kv etcd_pki_dir "$pki"
kv etcd_ca_cert "$(b64 "$pki/ca.crt")"
kv etcd_ca_key_present "$([ -r "$pki/ca.key" ] && echo 1 || echo 0)"
kv etcd_unit "$(b64 /etc/systemd/system/etcd.service)"
if command -v systemctl >/dev/null 2>&1 && [ -f /etc/systemd/system/etcd.service ]; then
  kv etcd_unit_active "$(systemctl is-active etcd 2>/dev/null || true)"
fi
# The kubelet and the load balancers' units, for the health view (kubelet and LB status).
if command -v systemctl >/dev/null 2>&1; then
  for u in kubelet containerd haproxy nginx envoy; do kv "unit_$u" "$(systemctl is-active "$u" 2>/dev/null || true)"; done
fi
# Static pods the app moved aside (stopped), so discovery after a switch still sees them.
kv parked_manifests "$(ls /etc/kubernetes/kes-parked 2>/dev/null | tr '\n' ' ')"
# A parked apiserver still says which etcd it is configured for (health names it as parked).
kv parked_apiserver_manifest "$(b64 /etc/kubernetes/kes-parked/kube-apiserver.yaml)"
for t in etcd etcdctl etcdutl kubectl; do
  p=$(tool $t)
  kv "tool_$t" "$p"
  if [ -n "$p" ] && [ "$t" != kubectl ]; then kv "version_$t" "$(ver "$p")"; fi
done
kv listening "$( (ss -Hltn 2>/dev/null || true) | awk '{print $4}' | grep -Eo '[0-9]+$' | sort -un | tr '\n' ' ')"
kv disk_var_lib "$(df -Pk /var/lib 2>/dev/null | awk 'NR==2{print $4}')"
echo KES_END
