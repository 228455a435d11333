#!/usr/bin/env bash
# Trial (issue 8): the REAL kubelet 1.36.3 + Debian 12's containerd 1.6 / runc 1.1 in one lab-like
# host (network namespace kt1-h1, 198.18.250.2 on its loopback, private mount/pid/uts namespaces),
# running kubeadm's own etcd (and optionally kube-apiserver) static pods from images built locally
# (no registry). Results and the decision: test/lab/README.md, "Real kubelet + containerd: trial".
#
#   sudo test/lab/experiments/kubelet-containerd-trial.sh [run|down]     (default: run, then down)
#     KT1_FULL=1        real `kubeadm init` (kubelet TLS bootstrap, Node, mirror pods, CNI, an API pod);
#                       default: standalone kubelet + kubeadm's etcd / kube-apiserver static pods
#     KT1_HOSTS=3       N control-plane hosts kt1-h1…N on a bridge inside netns kt1-sw (198.18.250.2…),
#                       `kubeadm init` on h1 then `kubeadm join --control-plane` one at a time
#     KT1_APISERVER=1   standalone mode: also run kube-apiserver as a static pod (default 1)
#     KT1_IDLE=30       seconds of idle CPU measurement
#     KT1_KEEP=1        leave the host running after `run` (then: `… down`)
#
# Needs: root, apt packages containerd + runc (installed, their service NOT running: this script
# starts containerd itself inside the host only), the lab cache (build-binaries.sh), Go 1.26.
# Builds into $KES_LAB_CACHE/trial/ (kubelet ~60 s with a warm Go cache, pause <1 s, images ~1 s).
# Touches only: netns kt1-h*, kt1-sw, /tmp/kt1-trial, cgroups /sys/fs/cgroup/*/kt1trial, its own
# processes (optional: Debian's containernetworking-plugins for the pod network).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KES_LAB_CACHE:-/var/cache/kes-lab}
trial=$cache/trial
kv=v1.36.3
ev=v3.6.16
NS=kt1-h1
ADDR=198.18.250.2
TR=/tmp/kt1-trial
T=$TR/h1
CGROOT=kt1trial
mode=${1:-all}
log() { printf 'kt1: %s\n' "$*"; }

down() {
  # Kill the host's pid-namespace init (unshare --kill-child): containerd, kubelet, shims, pods die.
  for f in $TR/h*/unshare.pid; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    if [ -d /proc/$p ] && tr '\0' ' ' </proc/$p/cmdline | grep -q "kt1-host.sh"; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  for ns in $(ip netns list | awk '/^kt1-(h[0-9]+|sw)( |$)/ {print $1}'); do
    for i in $(seq 1 50); do [ -z "$(ip netns pids $ns 2>/dev/null)" ] && break; sleep 0.1; done
    ip netns pids $ns 2>/dev/null | while read -r p; do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
  # cgroups the kubelet/runc made under our root (deepest first); empty once the processes are gone
  for c in /sys/fs/cgroup/*/; do
    [ -d "$c$CGROOT" ] || continue
    for i in 1 2 3 4 5; do
      find "$c$CGROOT" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$c$CGROOT" ] || break; sleep 0.5
    done
  done
  if [ -d $TR ]; then rm -rf "$trial/last-logs"; mkdir -p "$trial/last-logs"; for h in $TR/h*; do [ -d $h/log ] && cp -r $h/log "$trial/last-logs/${h##*/}"; done; fi
  rm -rf $TR
  log "down: netns $(ip netns list | grep -c "^kt1-" || true) left, cgroups $(ls -d /sys/fs/cgroup/*/$CGROOT 2>/dev/null | wc -l) left"
}

build() {
  export GOCACHE=$cache/go-build GOMODCACHE=$cache/go-mod GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  export PATH=/usr/local/go/bin:$PATH
  mkdir -p "$trial"
  if [ ! -x "$trial/kubelet" ]; then
    # The wrapper module has no `tool` line for the kubelet: build from a scratch copy of it.
    rm -rf "$trial/mod"; mkdir -p "$trial/mod"; cp "$here/../gobuild/kubernetes/go."{mod,sum} "$trial/mod/"
    vpkg=k8s.io/component-base/version
    ld="-s -w -X $vpkg.gitVersion=$kv -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=36 -X $vpkg.gitTreeState=clean"
    ld="$ld -X $vpkg.buildDate=1970-01-01T00:00:00Z -X $vpkg.gitCommit=0000000000000000000000000000000000000000"
    t0=$SECONDS
    (cd "$trial/mod" && nice -n 10 go build -trimpath -ldflags "$ld" -o "$trial/kubelet" k8s.io/kubernetes/cmd/kubelet)
    log "built kubelet in $((SECONDS - t0)) s"
  fi
  if [ ! -x "$trial/pause" ]; then
    rm -rf "$trial/pausemod"; mkdir -p "$trial/pausemod"; cp "$here/../gobuild/pause/main.go" "$trial/pausemod/main.go"
    printf 'module kes.lab/pause\n\ngo 1.26.0\n' >"$trial/pausemod/go.mod"
    (cd "$trial/pausemod" && go build -trimpath -ldflags "-s -w" -o "$trial/pause" .)
  fi
  mkdir -p "$trial/images"
  t0=$SECONDS
  [ -f "$trial/images/pause.tar" ] || python3 "$here/../image-tar.py" "$trial/images/pause.tar" registry.k8s.io/pause:3.10.2 /pause "$trial/pause=/pause"
  [ -f "$trial/images/etcd.tar" ] || python3 "$here/../image-tar.py" "$trial/images/etcd.tar" registry.k8s.io/etcd:3.6.16-0 /usr/local/bin/etcd \
    "$cache/etcd/$ev/etcd=/usr/local/bin/etcd" "$cache/etcd/$ev/etcdctl=/usr/local/bin/etcdctl"
  [ -f "$trial/images/kube-apiserver.tar" ] || python3 "$here/../image-tar.py" "$trial/images/kube-apiserver.tar" registry.k8s.io/kube-apiserver:$kv \
    /usr/local/bin/kube-apiserver "$cache/kubernetes/$kv/kube-apiserver=/usr/local/bin/kube-apiserver"
  for c in kube-controller-manager kube-scheduler; do
    [ -f "$trial/images/$c.tar" ] || python3 "$here/../image-tar.py" "$trial/images/$c.tar" registry.k8s.io/$c:$kv \
      /usr/local/bin/$c "$cache/kubernetes/$kv/$c=/usr/local/bin/$c"
  done
  log "images ready in $((SECONDS - t0)) s"
}

# What runs inside the host (PID 1 of its pid namespace is `unshare`, this script is its child).
host_script() {
  cat <<'EOS'
#!/usr/bin/env bash
# kt1-host.sh: runs inside netns + unshare --mount --pid --uts
set -uo pipefail
trial=$1; kv=$2; ADDR=$3; CGROOT=$4; FULL=$5; T=$6; HN=$7; PODNET=$8
exec >>$T/log/host.log 2>&1
# this script is PID 1 of the host: if it exits, every process in the host dies (so not `wait`)
pid1_forever() { while :; do sleep 3600 & wait $! 2>/dev/null; done; }
mount --make-rprivate /
hostname $HN
ip link set lo up
if ip link show eth0 >/dev/null 2>&1; then ip addr add $ADDR/24 dev eth0; ip link set eth0 up; else ip addr add $ADDR/32 dev lo; fi
mount -t tmpfs -o mode=755 tmpfs /run
for d in etc var opt; do
  mkdir -p $T/ov/$d/u $T/ov/$d/w
  mount -t overlay overlay -o lowerdir=/$d,upperdir=$T/ov/$d/u,workdir=$T/ov/$d/w /$d
done
# containerd's overlayfs snapshots cannot live on an overlay upper: bind real dirs
for d in /var/lib/containerd /var/lib/kubelet /var/lib/etcd /var/log/pods; do
  mkdir -p $d $T/data$d; mount --bind $T/data$d $d
done
mkdir -p /etc/kubernetes/manifests /var/log/containers /etc/containerd
# The kubelet "fixes" 6 global kernel tunables (vm.overcommit_memory, kernel.panic, …); with
# protectKernelDefaults it refuses to start instead. Show it the values it wants, in this mount ns only.
mkdir -p $T/sysctl
for kv2 in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
           kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  f=${kv2%%=*}; echo "${kv2#*=}" >$T/sysctl/${f//\//_}; mount --bind -o ro $T/sysctl/${f//\//_} /proc/sys/$f
done
cat >/etc/containerd/config.toml <<EOF
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.2"
  # no CAP_SYS_RESOURCE in this sandbox: runc cannot set negative oom_score_adj (without this:
  # "runc create failed: unable to start container process: can't get final child's PID from pipe: EOF")
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
EOF
# Pod network (Debian's containernetworking-plugins): a bridge inside this host's netns only, pods in
# 198.18.250.128/25; without it the node stays NotReady ("cni plugin not initialized").
if [ -x /usr/lib/cni/bridge ]; then
  mkdir -p /etc/cni/net.d
  cat >/etc/cni/net.d/10-kt1.conflist <<EOF
{"cniVersion": "1.0.0", "name": "kt1", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$PODNET"}]], "dataDir": "/run/cni-ipam"}},
  {"type": "loopback"}]}
EOF
fi
date +%s.%N >$T/t.containerd-start
containerd --config /etc/containerd/config.toml >$T/log/containerd.log 2>&1 &
echo $! >$T/containerd.pid
for i in $(seq 1 100); do ctr version >/dev/null 2>&1 && break; sleep 0.1; done
date +%s.%N >$T/t.containerd-ready
for img in pause etcd kube-apiserver kube-controller-manager kube-scheduler; do
  ctr -n k8s.io images import $trial/images/$img.tar
done
date +%s.%N >$T/t.images-imported
ctr -n k8s.io images ls -q
cat >$T/kubeadm.yaml <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: $ADDR, bindPort: 6443}
nodeRegistration: {name: $HN, criSocket: unix:///run/containerd/containerd.sock}
certificateKey: $(openssl rand -hex 32 | tee $T/certkey)
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: $kv
controlPlaneEndpoint: $ADDR:6443
etcd: {local: {imageTag: 3.6.16-0}}
networking: {serviceSubnet: 198.19.255.0/24, podSubnet: 198.18.192.0/18}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: /$CGROOT
failCgroupV1: false
protectKernelDefaults: true
fileCheckFrequency: 1s
EOF
K=/var/cache/kes-lab/kubernetes/$kv/kubeadm
if [ "$FULL" != 0 ]; then
  # `kubeadm init` as on a real node; a minimal systemctl (no systemd here) that (re)starts the
  # kubelet the way the kubelet .deb's unit + kubeadm's drop-in would.
  mkdir -p $T/bin
  cat >$T/bin/systemctl <<EOF
#!/bin/bash
echo "systemctl \$*" >>$T/log/systemctl.log
case "\$*" in
  *start*kubelet*)
    [ -f $T/kubelet.pid ] && kill \$(cat $T/kubelet.pid) 2>/dev/null && sleep 0.5
    [ -f /var/lib/kubelet/config.yaml ] || exit 0
    . /var/lib/kubelet/kubeadm-flags.env 2>/dev/null
    date +%s.%N >>$T/t.kubelet-start
    setsid $trial/kubelet --bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf \\
      --config=/var/lib/kubelet/config.yaml \$KUBELET_KUBEADM_ARGS --node-ip=$ADDR --cgroup-root=/$CGROOT/$HN >>$T/log/kubelet.log 2>&1 </dev/null &
    echo \$! >$T/kubelet.pid ;;
esac
exit 0
EOF
  chmod +x $T/bin/systemctl
  export PATH=$T/bin:$PATH
  if [ "$FULL" = 2 ]; then # join: the trial writes $T/join.sh once the first host is up
    for i in $(seq 1 3000); do [ -f $T/join.sh ] && break; sleep 0.1; done
    date +%s.%N >$T/t.init-start
    bash $T/join.sh >$T/log/kubeadm-join.log 2>&1; echo $? >$T/init.rc; date +%s.%N >$T/t.init-end
    touch $T/kubelet.pid; pid1_forever
  fi
  date +%s.%N >$T/t.init-start
  $K init --config $T/kubeadm.yaml --upload-certs --skip-phases=preflight,addon/coredns,addon/kube-proxy >$T/log/kubeadm-init.log 2>&1
  echo $? >$T/init.rc
  date +%s.%N >$T/t.init-end
  touch $T/kubelet.pid
  pid1_forever
fi
$K init phase certs all --config $T/kubeadm.yaml
$K init phase kubeconfig all --config $T/kubeadm.yaml
cat >/var/lib/kubelet/config.yaml <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$CGROOT
failCgroupV1: false
protectKernelDefaults: true
address: 127.0.0.1
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
fileCheckFrequency: 1s
syncFrequency: 10s
EOF
date +%s.%N >$T/t.kubelet-start
$trial/kubelet --config=/var/lib/kubelet/config.yaml --hostname-override=$HN --node-ip=$ADDR >$T/log/kubelet.log 2>&1 &
echo $! >$T/kubelet.pid
pid1_forever
EOS
}

run() {
  down >/dev/null 2>&1 || true
  for b in containerd runc ctr; do command -v $b >/dev/null || { log "$b missing: apt-get install containerd runc"; exit 1; }; done
  build
  mkdir -p $T/log
  if [ "${KT1_HOSTS:-1}" -gt 1 ]; then multi; return; fi
  # cgroupRoot must exist (cgroup v1 here: one dir per hierarchy); cpuset needs cpus/mems filled in
  for c in /sys/fs/cgroup/*/; do
    case "$c" in */unified/) continue;; esac
    for d in $CGROOT $CGROOT/kt1-h1; do
      mkdir -p "$c$d"
      [ -f "${c}cpuset.cpus" ] && cat "${c}cpuset.cpus" >"$c$d/cpuset.cpus" && cat "${c}cpuset.mems" >"$c$d/cpuset.mems"
    done
  done
  ip netns add $NS
  host_script >$T/kt1-host.sh; chmod +x $T/kt1-host.sh
  t0=$(date +%s.%N)
  # not `ip netns exec`: it remounts /sys, which hides the cgroup mounts from the kubelet
  setsid nsenter --net=/run/netns/$NS unshare --mount --uts --pid --fork --kill-child --mount-proc \
    $T/kt1-host.sh "$trial" $kv $ADDR $CGROOT "${KT1_FULL:-0}" $T kt1-h1 198.18.250.128/25 </dev/null >/dev/null 2>&1 &
  echo $! >$T/unshare.pid
  for i in $(seq 1 300); do [ -f $T/kubelet.pid ] && break; sleep 0.1; done
  if [ "${KT1_FULL:-0}" = 1 ]; then full; return; fi
  [ -f $T/kubelet.pid ] || { log "host did not come up:"; tail -30 $T/log/host.log; return 1; }
  # wait for the kubelet's healthz
  for i in $(seq 1 600); do
    ip netns exec $NS curl -fsS http://127.0.0.1:10248/healthz >/dev/null 2>&1 && break; sleep 0.1
    if [ $i -gt 30 ] && [ -z "$(pids_of kubelet)" ]; then log "kubelet exited:"; grep '^E' $T/log/kubelet.log | tail -5; return 1; fi
  done
  tk=$(date +%s.%N)
  log "kubelet healthz after $(echo "$tk - $(cat $T/t.kubelet-start)" | bc) s (containerd ready $(echo "$(cat $T/t.containerd-ready) - $(cat $T/t.containerd-start)" | bc) s, 5 image imports $(echo "$(cat $T/t.images-imported) - $(cat $T/t.containerd-ready)" | bc) s)"
  # etcd static pod, from kubeadm's own manifest
  ts=$(date +%s.%N)
  nsenter -t "$(pids_of containerd | head -1)" -m -n -u /var/cache/kes-lab/kubernetes/$kv/kubeadm init phase etcd local --config $T/kubeadm.yaml
  ok=
  for i in $(seq 1 1200); do
    if ip netns exec $NS curl -fsS http://127.0.0.1:2381/readyz >/dev/null 2>&1; then ok=1; break; fi; sleep 0.1
  done
  if [ -n "$ok" ]; then log "etcd static pod ready (/readyz) $(echo "$(date +%s.%N) - $ts" | bc) s after its manifest was written"
  else log "etcd static pod NOT ready after 120 s"; fi
  if [ "${KT1_APISERVER:-1}" = 1 ] && [ -n "$ok" ]; then
    ts=$(date +%s.%N)
    nsenter -t "$(pids_of containerd | head -1)" -m -n -u /var/cache/kes-lab/kubernetes/$kv/kubeadm init phase control-plane apiserver --config $T/kubeadm.yaml
    ok2=
    for i in $(seq 1 1800); do
      if ip netns exec $NS curl -fsSk https://$ADDR:6443/readyz >/dev/null 2>&1; then ok2=1; break; fi; sleep 0.1
    done
    if [ -n "$ok2" ]; then log "kube-apiserver static pod ready (/readyz) $(echo "$(date +%s.%N) - $ts" | bc) s after its manifest was written"
    else log "kube-apiserver static pod NOT ready after 180 s"; fi
  fi
  nsenter -t "$(pids_of containerd | head -1)" -m -n -u -p ctr -n k8s.io tasks ls || true
  measure
}

multi() { # KT1_HOSTS=N: N control-plane hosts on a bridge in netns kt1-sw, kubeadm init + join
  local n=${KT1_HOSTS} i
  mkcg() { for c in /sys/fs/cgroup/*/; do
      case "$c" in */unified/) continue;; esac
      mkdir -p "$c$1"; [ -f "${c}cpuset.cpus" ] && cat "${c}cpuset.cpus" >"$c$1/cpuset.cpus" && cat "${c}cpuset.mems" >"$c$1/cpuset.mems"
    done; }
  mkcg $CGROOT
  ip netns add kt1-sw
  ip -n kt1-sw link add br0 type bridge; ip -n kt1-sw link set br0 up
  for i in $(seq 1 $n); do
    local h=$TR/h$i; mkdir -p $h/log; mkcg $CGROOT/kt1-h$i
    ip netns add kt1-h$i
    ip -n kt1-sw link add v$i type veth peer name eth0 netns kt1-h$i
    ip -n kt1-sw link set v$i master br0; ip -n kt1-sw link set v$i up
    host_script >$h/kt1-host.sh; chmod +x $h/kt1-host.sh
    local full=2; [ $i = 1 ] && full=1
    setsid nsenter --net=/run/netns/kt1-h$i unshare --mount --uts --pid --fork --kill-child --mount-proc \
      $h/kt1-host.sh "$trial" $kv 198.18.250.$((1 + i)) $CGROOT $full $h kt1-h$i 198.18.250.$((128 + 32 * (i - 1)))/27 </dev/null >/dev/null 2>&1 &
    echo $! >$h/unshare.pid
  done
  local t0=$(date +%s.%N)
  for i in $(seq 1 3000); do [ -f $TR/h1/init.rc ] && break; sleep 0.1; done
  log "h1 kubeadm init: rc $(cat $TR/h1/init.rc), $(echo "$(cat $TR/h1/t.init-end) - $(cat $TR/h1/t.init-start)" | bc) s (imports $(echo "$(cat $TR/h1/t.images-imported) - $(cat $TR/h1/t.containerd-ready)" | bc) s, with $n hosts importing at once)"
  NS=kt1-h1
  local h1=$(pids_of containerd | head -1)
  local jc=$(nsenter -t $h1 -m -n -u /var/cache/kes-lab/kubernetes/$kv/kubeadm token create --print-join-command --kubeconfig /etc/kubernetes/admin.conf)
  for i in $(seq 2 $n); do
    # one at a time, as the lab does (etcd adds one learner at a time)
    echo "/var/cache/kes-lab/kubernetes/$kv/kubeadm ${jc#kubeadm } --control-plane --certificate-key $(cat $TR/h1/certkey) --apiserver-advertise-address 198.18.250.$((1 + i)) --skip-phases=preflight" >$TR/h$i/join.sh
    for j in $(seq 1 3000); do [ -f $TR/h$i/init.rc ] && break; sleep 0.1; done
    log "h$i kubeadm join --control-plane: rc $(cat $TR/h$i/init.rc), $(echo "$(cat $TR/h$i/t.init-end) - $(cat $TR/h$i/t.init-start)" | bc) s"
    [ "$(cat $TR/h$i/init.rc)" = 0 ] || tail -5 $TR/h$i/log/kubeadm-join.log
  done
  log "$n control-plane hosts up $(echo "$(date +%s.%N) - $t0" | bc) s after start"
  kc() { nsenter -t "$h1" -m -n -u /var/cache/kes-lab/kubernetes/$kv/kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
  sleep 15
  kc get nodes -o wide || true
  kc get pods -A -o wide || true
  nsenter -t "$h1" -m -n -u /var/cache/kes-lab/etcd/$ev/etcdctl --endpoints https://198.18.250.2:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \
    --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key member list -w table || true
  for i in $(seq 1 $n); do NS=kt1-h$i; log "host h$i:"; measure; done
  cat /proc/loadavg
}

full() {
  for i in $(seq 1 3000); do [ -f $T/init.rc ] && break; sleep 0.1; done
  log "kubeadm init (preflight, coredns, kube-proxy skipped): rc $(cat $T/init.rc 2>/dev/null || echo timeout)," \
    "$(echo "$(cat $T/t.init-end) - $(cat $T/t.init-start)" | bc) s; containerd ready $(echo "$(cat $T/t.containerd-ready) - $(cat $T/t.containerd-start)" | bc) s," \
    "5 image imports $(echo "$(cat $T/t.images-imported) - $(cat $T/t.containerd-ready)" | bc) s"
  grep -E 'healthy after|is ready|took|error|Your Kubernetes' $T/log/kubeadm-init.log | head -20
  kc() { nsenter -t "$(pids_of containerd | head -1)" -m -n -u /var/cache/kes-lab/kubernetes/$kv/kubectl --kubeconfig /etc/kubernetes/admin.conf "$@"; }
  sleep 10
  kc get nodes -o wide || true
  kc get pods -A -o wide || true
  kc get csr || true
  # an API pod (not hostNetwork) scheduled onto the node: needs the pod network
  kc taint node kt1-h1 node-role.kubernetes.io/control-plane- >/dev/null || true
  ts=$(date +%s.%N)
  kc run kt1-probe --image=registry.k8s.io/pause:3.10.2 --image-pull-policy=Never --restart=Never >/dev/null || true
  kc wait --for=condition=Ready pod/kt1-probe --timeout=120s >/dev/null && log "API pod kt1-probe Ready $(echo "$(date +%s.%N) - $ts" | bc) s after create" || log "API pod kt1-probe NOT Ready"
  kc get nodes; kc get pod kt1-probe -o wide || true
  measure
}

pids_of() { # name: processes of that name inside our host
  for p in $(ip netns pids $NS); do [ "$(cat /proc/$p/comm 2>/dev/null)" = "$1" ] && echo $p; done
}
cpu_ticks() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }
measure() {
  sleep 5
  log "RSS (MB):"
  for n in containerd kubelet containerd-shim pause etcd kube-apiserver; do
    tot=0; cnt=0
    for p in $(pids_of $n); do r=$(awk '/VmRSS/ {print $2}' /proc/$p/status); tot=$((tot + r)); cnt=$((cnt + 1)); done
    log "  $n x$cnt: $((tot / 1024))"
  done
  idle=${KT1_IDLE:-30}
  declare -A a
  for n in containerd kubelet containerd-shim; do s=0; for p in $(pids_of $n); do s=$((s + $(cpu_ticks $p))); done; a[$n]=$s; done
  sleep "$idle"
  hz=$(getconf CLK_TCK)
  for n in containerd kubelet containerd-shim; do
    s=0; for p in $(pids_of $n); do s=$((s + $(cpu_ticks $p))); done
    log "  idle CPU $n: $(echo "scale=2; ($s - ${a[$n]}) * 100 / $hz / $idle" | bc) % of one core (over $idle s)"
  done
}

case "$mode" in
  run) run ;;
  down) down ;;
  all) trap down EXIT; run; if [ "${KT1_KEEP:-}" = 1 ]; then trap - EXIT; log "left running; '$0 down' to stop"; fi ;;
  *) echo "usage: $0 [run|down]"; exit 2 ;;
esac
