#!/usr/bin/env bash
# Pre-flight checks before a node becomes part of a new kubeadm cluster. Read-only: changes nothing.
# Usage: bash preflight.sh ROLES [PORT…]
#   ROLES  comma-separated, from lb, master, worker (e.g. "master" or "lb,master")
#   PORT   TCP ports that must be free here (the app passes kubeadm's ports for the roles, and the
#          load balancer's port on an LB node)
# Output, one record per line, fields separated by one TAB (no TAB or newline inside a field):
#   preflight<TAB>1                        first line: format version
#   fact<TAB>NAME<TAB>VALUE                clock, uid, user, sudo, hostname
#   check<TAB>NAME<TAB>ok|warn|fail<TAB>DETAIL
#   end<TAB>preflight                      last line: the script ran to the end
# Exit code 0 whatever the checks found (a failed check is data); 2 for bad arguments.
# Thresholds follow kubeadm's own preflight: 2 CPUs and 1700 MB on control-plane nodes.
set -u
# The clock comes first, as close as possible to when the app started the run (skew is computed
# on the app's side from the round trip).
printf 'preflight\t1\n'
printf 'fact\tclock\t%s\n' "$(date +%s.%N)"
clean() { printf '%s' "$1" | tr '\t\r\n' '   '; }
fact() { printf 'fact\t%s\t%s\n' "$1" "$(clean "$2")"; }
row() { printf 'check\t%s\t%s\t%s\n' "$1" "$2" "$(clean "$3")"; }
has() { command -v "$1" >/dev/null 2>&1; }
# a bounded wait for commands that may hang (sudo on a directory service, DNS, a stuck unit)
if has timeout; then t() { timeout 10 "$@"; }; else t() { "$@"; }; fi

roles=${1:-}
shift || true
is_master=0 is_worker=0 is_lb=0
IFS=, read -r -a role_list <<<"$roles"
for r in "${role_list[@]}"; do
  case "$r" in
    master) is_master=1 ;;
    worker) is_worker=1 ;;
    lb) is_lb=1 ;;
    *) row args fail "unknown role '$r' (lb, master, worker)"; printf 'end\tpreflight\n'; exit 2 ;;
  esac
done
ports=()
for p in "$@"; do
  case "$p" in
    '' | *[!0-9]*) row args fail "bad port '$p'"; printf 'end\tpreflight\n'; exit 2 ;;
  esac
  if [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then row args fail "bad port '$p'"; printf 'end\tpreflight\n'; exit 2; fi
  ports+=("$p")
done
kube=$((is_master || is_worker))

# --- who we are: root (logged in, or through sudo -n), or a user whose sudo does not work ------
uid=$(id -u)
fact uid "$uid"
fact user "$(id -un)"
root=0
if [ "$uid" = 0 ]; then
  root=1
  if [ -n "${SUDO_USER:-}" ]; then
    fact sudo "root via sudo -n (login $SUDO_USER)"
    row sudo ok "sudo -n works for $SUDO_USER"
  else
    fact sudo root
    row sudo ok "logged in as root"
  fi
elif ! has sudo; then
  fact sudo "no: sudo is not installed"
  row sudo fail "$(id -un) is not root and sudo is not installed"
elif why=$(t sudo -n true 2>&1 </dev/null); then
  # sudo works, yet this run is not elevated (the app runs elevated first): say so
  fact sudo yes
  row sudo warn "sudo -n works for $(id -un), but this run is not elevated"
else
  why=$(printf '%s' "$why" | head -n1)
  fact sudo "no: ${why:-sudo -n true failed}"
  row sudo fail "sudo -n true failed for $(id -un): ${why:-no message}"
fi
[ "$root" = 1 ] || notroot=" (not root: could not look everywhere)"
notroot=${notroot:-}

# --- operating system and hardware ---------------------------------------------------------------
osr() { sed -n "s/^$1=//p" /etc/os-release 2>/dev/null | head -n1 | tr -d '"'"'"; }
if [ -r /etc/os-release ]; then
  id=$(osr ID) ver=$(osr VERSION_ID) pretty=$(osr PRETTY_NAME) like=$(osr ID_LIKE)
  pretty=${pretty:-$id $ver}
  case "$id:$ver" in
    debian:11 | debian:12 | debian:13) row os ok "$pretty" ;;
    ubuntu:20.04 | ubuntu:22.04 | ubuntu:24.04) row os ok "$pretty" ;;
    ubuntu:*)
      major=${ver%%.*}
      if [ -n "$major" ] && [ "$major" -ge 20 ] 2>/dev/null; then
        row os warn "$pretty: not an LTS release the app is tested on (20.04, 22.04, 24.04)"
      else
        row os warn "$pretty: older than Ubuntu 20.04"
      fi
      ;;
    debian:*) row os warn "$pretty: the app is tested on Debian 11, 12 and 13" ;;
    *)
      case " $like " in
        *" debian "* | *" ubuntu "*) row os warn "$pretty: Debian-like, not tested" ;;
        *) row os warn "$pretty: not Debian or Ubuntu (the install steps use apt)" ;;
      esac
      ;;
  esac
else
  row os warn "no /etc/os-release ($(uname -sr))"
fi

arch=$(uname -m)
case "$arch" in
  x86_64 | aarch64) row arch ok "$arch" ;;
  ppc64le | s390x) row arch warn "$arch: Kubernetes ships it, the app is not tested on it" ;;
  *) row arch warn "$arch: Kubernetes packages exist for amd64, arm64, ppc64le and s390x only" ;;
esac

cpus=$(nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo)
if [ "$is_master" = 1 ] && [ "$cpus" -lt 2 ]; then
  row cpus fail "$cpus CPU: a control-plane node needs at least 2 (kubeadm NumCPU)"
else
  row cpus ok "$cpus CPU"
fi

# MB as kubeadm counts them (total RAM / 1024 / 1024)
mem=$(awk '$1 == "MemTotal:" { printf "%d", $2 / 1024 }' /proc/meminfo)
if [ "$is_master" = 1 ] && [ "$mem" -lt 1700 ]; then
  row memory fail "$mem MB: a control-plane node needs at least 1700 MB (kubeadm Mem)"
elif [ "$is_worker" = 1 ] && [ "$mem" -lt 1000 ]; then
  row memory warn "$mem MB: a worker with less than 1000 MB has little room for pods"
else
  row memory ok "$mem MB"
fi

# Swap: kubeadm only warns, the kubelet (failSwapOn) refuses to start; the app's node preparation
# turns it off (swapoff -a, swap lines of /etc/fstab commented out), hence a warning here.
swaps=$(awk 'NR > 1 { printf "%s%s (%d MB)", sep, $1, $3 / 1024; sep = ", " }' /proc/swaps 2>/dev/null)
fstab_swap=$(awk '$1 !~ /^#/ && $3 == "swap" { printf "%s%s", sep, $1; sep = ", " }' /etc/fstab 2>/dev/null)
if [ -n "$swaps" ]; then
  row swap warn "on: $swaps"
elif [ -n "$fstab_swap" ]; then
  row swap warn "off, but /etc/fstab turns it on at boot: $fstab_swap"
else
  row swap ok off
fi

if [ "$kube" = 1 ]; then
  # kubelet 1.35+ refuses cgroup v1 unless its configuration says failCgroupV1: false
  cg=$(stat -fc %T /sys/fs/cgroup 2>/dev/null)
  case "$cg" in
    cgroup2fs) row cgroup ok v2 ;;
    tmpfs) row cgroup warn "v1: kubelet 1.35 and newer refuse it unless configured with failCgroupV1: false" ;;
    *) row cgroup warn "no cgroup file system mounted at /sys/fs/cgroup (${cg:-missing})" ;;
  esac
  fwd=$(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null)
  if [ "$fwd" = 1 ]; then row ip-forward ok 1; else row ip-forward warn "net.ipv4.ip_forward is ${fwd:-unknown} (kubeadm requires 1)"; fi
  free=$(df -Pk /var/lib 2>/dev/null | awk 'NR == 2 { printf "%d", $4 / 1024 }')
  if [ -z "$free" ]; then row disk warn "cannot read the free space of /var/lib"
  elif [ "$free" -lt 2048 ]; then row disk warn "$free MB free in /var/lib: images and etcd need 2 GB or more"
  else row disk ok "$free MB free in /var/lib"; fi
fi

# --- ports ----------------------------------------------------------------------------------------
if [ "${#ports[@]}" -gt 0 ]; then
  if has ss; then
    # as root, -p names the process; any listening address on the port is a conflict (kubeadm
    # binds every address)
    if [ "$root" = 1 ]; then listen=$(ss -ltnHp 2>/dev/null); else listen=$(ss -ltnH 2>/dev/null); fi
    for p in "${ports[@]}"; do
      hits=$(printf '%s\n' "$listen" | awk -v p="$p" '{ a = $4; sub(/.*:/, "", a) } a == p' | head -n1)
      if [ -z "$hits" ]; then
        row "port-$p" ok free
      else
        addr=$(printf '%s' "$hits" | awk '{ print $4 }')
        who=$(printf '%s' "$hits" | sed -nE 's/.*users:\(\("([^"]+)",pid=([0-9]+).*/\1 (pid \2)/p')
        if [ -n "$who" ]; then row "port-$p" fail "in use: $addr by $who"; else row "port-$p" fail "in use: $addr$notroot"; fi
      fi
    done
  else
    for p in "${ports[@]}"; do row "port-$p" warn "ss (iproute2) is missing: cannot tell"; done
  fi
fi

# --- identity --------------------------------------------------------------------------------------
host=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null)
fact hostname "$host"
lower=$(printf '%s' "$host" | tr 'A-Z' 'a-z')
if [ -z "$host" ]; then
  row hostname fail "no hostname"
elif ! printf '%s' "$host" | grep -Eq '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$'; then
  row hostname warn "$host: not a lowercase DNS name; the node would register as '$lower'"
elif addr=$(t getent hosts "$host" 2>/dev/null | awk '{ print $1; exit }') && [ -n "$addr" ]; then
  row hostname ok "$host ($addr)"
else
  row hostname warn "$host does not resolve on the node (kubeadm warns)"
fi
fact machine_id "$(cat /etc/machine-id 2>/dev/null)"

# --- an earlier installation ------------------------------------------------------------------------
found=()
unseen=()
for f in admin.conf super-admin.conf kubelet.conf bootstrap-kubelet.conf controller-manager.conf scheduler.conf pki/ca.crt; do
  [ -e "/etc/kubernetes/$f" ] && found+=("/etc/kubernetes/$f")
done
if [ -d /etc/kubernetes/manifests ]; then
  if [ -r /etc/kubernetes/manifests ] && [ -x /etc/kubernetes/manifests ]; then
    for f in /etc/kubernetes/manifests/*.yaml; do [ -e "$f" ] && found+=("$f"); done
  else
    unseen+=(/etc/kubernetes/manifests)
  fi
fi
if [ -d /var/lib/etcd ]; then
  if [ -x /var/lib/etcd ]; then
    [ -d /var/lib/etcd/member ] && found+=(/var/lib/etcd/member)
  else
    unseen+=(/var/lib/etcd)
  fi
fi
[ -e /var/lib/kubelet/config.yaml ] && found+=(/var/lib/kubelet/config.yaml)
procs=()
if has pgrep; then
  for p in kube-apiserver etcd kube-controller-manager kube-scheduler kubelet; do
    pid=$(pgrep -x "${p:0:15}" 2>/dev/null | head -n1) # the kernel keeps 15 characters of a name
    [ -n "$pid" ] && procs+=("$p (pid $pid)")
  done
fi
# a kubelet the packages installed restarts until kubeadm configures it: only a configured one counts
if [ -e /var/lib/kubelet/config.yaml ] && has systemctl && [ "$(t systemctl is-active kubelet 2>/dev/null </dev/null)" = active ]; then
  case " ${procs[*]:-} " in *" kubelet ("*) ;; *) procs+=("kubelet service active") ;; esac
fi
if [ "${#found[@]}" -gt 0 ] || [ "${#procs[@]}" -gt 0 ]; then
  what="${found[*]:-}"
  [ "${#procs[@]}" -gt 0 ] && what="${what:+$what; }running: $(printf '%s, ' "${procs[@]}" | sed 's/, $//')"
  if [ "$kube" = 1 ]; then row existing fail "$what"; else row existing warn "$what"; fi
elif [ "${#unseen[@]}" -gt 0 ]; then
  row existing warn "nothing found, but could not look into ${unseen[*]}$notroot"
else
  row existing ok none
fi

# --- what is installed already (information only) ---------------------------------------------------
# kubeadm and kubectl (client tools) tell their own version; daemons never get run for it (some
# kubelet builds ignore --version and start serving): their version comes from the package database.
pkgver() { # first installed package of the list: its version without epoch and Debian revision
  local p v
  for p in "$@"; do
    v=$(dpkg-query -W -f '${Status} ${Version}' "$p" 2>/dev/null </dev/null | awk '$3 == "installed" { print $4 }')
    if [ -n "$v" ]; then printf '%s' "$v" | sed -E 's/^[0-9]+://; s/[-~+].*//'; return; fi
  done
}
rt=()
for x in containerd:containerd.io,containerd crio:cri-o dockerd:docker-ce,docker.io; do
  bin=${x%%:*}
  if has "$bin"; then
    IFS=, read -r -a pk <<<"${x#*:}"
    v=$(pkgver "${pk[@]}")
    state=
    has systemctl && state=$(t systemctl is-active "$bin" 2>/dev/null </dev/null)
    rt+=("$bin ${v:-($(command -v "$bin"))}${state:+ ($state)}")
  fi
done
row runtime ok "$(IFS=,; printf '%s' "${rt[*]:-none}" | sed 's/,/, /g')"
kt=()
for x in kubeadm kubelet kubectl; do
  if has "$x"; then
    case "$x" in
      kubeadm) v=$(t kubeadm version -o short 2>/dev/null </dev/null) ;;
      kubectl) v=$(t kubectl version --client 2>/dev/null </dev/null | grep -Eo 'v[0-9]+\.[0-9]+\.[0-9]+' | head -n1) ;;
      *) v= ;;
    esac
    [ -n "$v" ] || v=$(pkgver "$x")
    kt+=("$x ${v:-($(command -v "$x"))}")
  fi
done
row kube-tools ok "$(IFS=,; printf '%s' "${kt[*]:-none}" | sed 's/,/, /g')"
printf 'end\tpreflight\n'
