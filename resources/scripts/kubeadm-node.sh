#!/usr/bin/env bash
# kubeadm on this node: where it stands, init, join, reset. The configuration (with the bootstrap
# token and certificate key) arrives as a 0600 file the app uploaded, never as an argument (the
# process list shows arguments), and is removed when kubeadm is done with it.
# Usage: bash kubeadm-node.sh status
#        bash kubeadm-node.sh init|join CONFIG [IGNORE_PREFLIGHT_ERRORS]   (comma list, may be empty)
#        bash kubeadm-node.sh join-secrets CONFIG   (new token + certificates uploaded again)
#        bash kubeadm-node.sh reset
#        bash kubeadm-node.sh ca-hash        (the CA's SPKI sha256, for --discovery-token-ca-cert-hash)
set -euo pipefail
action=${1:-}
kubeadm=$(command -v kubeadm || echo /usr/bin/kubeadm)
case "$action" in
  status)
    # joined: this node has a kubelet identity; control-plane: it runs an apiserver (or parked one)
    [ -f /etc/kubernetes/kubelet.conf ] && echo KES_JOINED=1 || echo KES_JOINED=0
    if [ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] || [ -f /etc/kubernetes/kes-parked/kube-apiserver.yaml ]; then
      echo KES_CONTROL_PLANE=1; else echo KES_CONTROL_PLANE=0; fi
    [ -f /etc/kubernetes/admin.conf ] && echo KES_ADMIN_CONF=1 || echo KES_ADMIN_CONF=0
    echo "KES_KUBEADM=$("$kubeadm" version -o short 2>/dev/null || echo none)"
    ;;
  init|join)
    config=${2:?config file}
    ignore=${3:-}
    case "$config" in /var/lib/kube-etcd-switch/transfer/*) ;; *) echo "config must be in the app's transfer folder: $config" >&2; exit 2;; esac
    case "$ignore" in *[!A-Za-z0-9,._-]*) echo "bad preflight error list: $ignore" >&2; exit 2;; esac
    trap 'rm -f -- "$config"' EXIT
    args=(--config "$config")
    [ -n "$ignore" ] && args+=("--ignore-preflight-errors=$ignore")
    [ "$action" = init ] && args+=(--upload-certs)
    "$kubeadm" "$action" "${args[@]}"
    ;;
  join-secrets)
    # a running cluster: a new bootstrap token and the control-plane certificates uploaded again
    # under a new certificate key, both taken from CONFIG (an InitConfiguration)
    config=${2:?config file}
    case "$config" in /var/lib/kube-etcd-switch/transfer/*) ;; *) echo "config must be in the app's transfer folder: $config" >&2; exit 2;; esac
    trap 'rm -f -- "$config"' EXIT
    "$kubeadm" init phase upload-certs --upload-certs --config "$config" --kubeconfig /etc/kubernetes/admin.conf
    "$kubeadm" token create --config "$config" --kubeconfig /etc/kubernetes/admin.conf
    ;;
  reset)
    "$kubeadm" reset -f
    # What kubeadm reset says it leaves: the CNI configuration and the iptables rules of kube-proxy and
    # the CNI. Only those rules go (chains named KUBE-*, cali-*, FLANNEL*): the machine's own firewall
    # rules stay (a plain `iptables -F` would drop them too).
    rm -rf /etc/cni/net.d
    for save in iptables-save ip6tables-save; do
      command -v "$save" >/dev/null || continue
      restore=${save%-save}-restore
      "$save" | grep -Ev -- '(KUBE-|cali-|CALI-|FLANNEL|flannel)' | "$restore" || echo "$save: Kubernetes rules not removed" >&2
    done
    echo KES_RESET=1
    ;;
  ca-hash)
    openssl x509 -pubkey -in /etc/kubernetes/pki/ca.crt | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex | sed 's/^.* //; s/^/KES_CA_HASH=sha256:/'
    ;;
  *) echo "usage: kubeadm-node.sh status|init|join|join-secrets|reset|ca-hash" >&2; exit 2;;
esac
