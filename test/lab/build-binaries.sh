#!/usr/bin/env bash
# Builds (or finds) the real binaries the test lab runs, into a per-version cache outside the repo:
#   <cache>/kubernetes/v1.36.3/{kubeadm,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,kubelet}
#   <cache>/cri-tools/v1.36.0/crictl                  (Go build; the real kubelet mode, `--kubelet real`)
#   <cache>/pause/pause                               (static Go `pause` for the real-kubelet images)
#   <cache>/etcd/v3.6.16/{etcd,etcdctl,etcdutl}       (Go build from the module proxy)
#   <cache>/etcd/v3.5.30/{etcd,etcdctl,etcdutl}       (Debian sid: apt-get download + dpkg -x)
#   <cache>/etcd/v3.4.23/{etcd,etcdctl}               (Debian 12's etcd-server/etcd-client, copied)
#   <cache>/bin/envoy-check                           (Envoy bootstrap schema checker, go-control-plane)
# Only what is missing is built; it prints what it did and how long each part took.
# Versions are pinned by the wrapper modules in test/lab/gobuild/*/go.mod (+ go.sum).
#   KES_LAB_CACHE   cache root (default /var/cache/kes-lab)
#   KES_LAB_ONLY    space-separated subset: "kubernetes crictl etcd36 etcd35 etcd34 envoy-check" (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KES_LAB_CACHE:-/var/cache/kes-lab}
only=${KES_LAB_ONLY:-kubernetes crictl etcd36 etcd35 etcd34 envoy-check}
mkdir -p "$cache"
export GOCACHE="$cache/go-build" GOMODCACHE="$cache/go-mod" GOFLAGS=-mod=mod GOTOOLCHAIN=local
export CGO_ENABLED=0
export PATH="/usr/local/go/bin:$PATH"

log() { printf 'lab-binaries: %s\n' "$*"; }
modver() { awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit}' "$here/gobuild/$1/go.mod"; }
want() { case " $only " in *" $1 "*) return 0;; esac; return 1; }
# A finished build writes .complete last, so an interrupted one is redone.
done_in() { [ -f "$1/.complete" ]; }

build_go() { # module dir, out dir, ldflags, packages...
  local mod=$1 out=$2 ldflags=$3; shift 3
  local tmp="$out.tmp.$$"; rm -rf "$tmp"; mkdir -p "$tmp"
  for pkg in "$@"; do
    local name=${pkg##*/}
    case "$pkg" in go.etcd.io/etcd/server/v3) name=etcd;; go.etcd.io/etcd/*/v3) name=$(basename "$(dirname "$pkg")");; esac
    local t0=$SECONDS
    (cd "$here/gobuild/$mod" && go build -trimpath -ldflags "$ldflags" -o "$tmp/$name" "$pkg")
    log "  built $name in $((SECONDS - t0)) s"
  done
  rm -rf "$out"; mv "$tmp" "$out"; touch "$out/.complete"
}

if want kubernetes; then
  kv=$(modver kubernetes k8s.io/kubernetes)
  out="$cache/kubernetes/$kv"
  minor=${kv#v1.}; minor=${minor%%.*}
  # kubeadm compares its own version with the cluster's; without these it reports v0.0.0-master.
  vpkg=k8s.io/component-base/version
  ld="-s -w -X $vpkg.gitVersion=$kv -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
  ld="$ld -X $vpkg.buildDate=1970-01-01T00:00:00Z -X $vpkg.gitCommit=0000000000000000000000000000000000000000"
  if done_in "$out"; then log "kubernetes $kv: cached in $out"
  else
    if ! command -v go >/dev/null; then log "go is not installed (needed for kubernetes $kv)"; exit 1; fi
    log "kubernetes $kv: building (a cold build takes ~30 min on 2 cores) …"; t0=$SECONDS
    build_go kubernetes "$out" "$ld" k8s.io/kubernetes/cmd/{kubeadm,kube-apiserver,kube-controller-manager,kube-scheduler,kubectl,kubelet}
    log "kubernetes $kv: done in $((SECONDS - t0)) s"
  fi
  # A cache made before the kubelet joined the list: add what is missing, in place.
  for b in kubelet; do
    [ -x "$out/$b" ] && continue
    if ! command -v go >/dev/null; then log "go is not installed (needed for $b $kv)"; exit 1; fi
    t0=$SECONDS; (cd "$here/gobuild/kubernetes" && go build -trimpath -ldflags "$ld" -o "$out/$b.tmp.$$" "k8s.io/kubernetes/cmd/$b")
    mv "$out/$b.tmp.$$" "$out/$b"; log "kubernetes $kv: built $b in $((SECONDS - t0)) s"
  done
fi

if want crictl; then
  # The real crictl (cri-tools) and a static `pause`: only the real-kubelet mode uses them.
  cv=$(modver cri-tools sigs.k8s.io/cri-tools)
  out="$cache/cri-tools/$cv"
  if done_in "$out"; then log "crictl $cv: cached in $out"
  else
    if ! command -v go >/dev/null; then log "go is not installed (needed for crictl $cv)"; exit 1; fi
    log "crictl $cv: building …"; t0=$SECONDS
    build_go cri-tools "$out" "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$cv" sigs.k8s.io/cri-tools/cmd/crictl
    log "crictl $cv: done in $((SECONDS - t0)) s"
  fi
  out="$cache/pause"
  if done_in "$out"; then log "pause: cached in $out"
  else
    t0=$SECONDS; build_go pause "$out" "-s -w" kes.lab/pause
    log "pause: built in $((SECONDS - t0)) s"
  fi
fi

if want etcd36; then
  ev=$(modver etcd go.etcd.io/etcd/server/v3)
  out="$cache/etcd/$ev"
  if done_in "$out"; then log "etcd $ev: cached in $out"
  else
    log "etcd $ev: building …"; t0=$SECONDS
    build_go etcd "$out" "-s -w" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/etcdctl/v3 go.etcd.io/etcd/etcdutl/v3
    log "etcd $ev: done in $((SECONDS - t0)) s"
  fi
fi

if want etcd35; then
  # Debian's newer suites ship etcd 3.5 (static Go binaries that run on Debian 12). Downloaded with a
  # throwaway sources list and unpacked; nothing is installed system-wide.
  existing=$(ls -d "$cache"/etcd/v3.5.* 2>/dev/null | while read -r d; do [ -f "$d/.complete" ] && echo "$d"; done | sort -V | tail -n1 || true)
  if [ -n "$existing" ]; then log "etcd ${existing##*/}: cached in $existing"
  else
    t0=$SECONDS; work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    uri=${uri:-$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)}
    mkdir -p "$work/lists/partial" "$work/archives/partial"
    # sid carries the newest 3.5 patch (3.5.30 when this was written; trixie has 3.5.16)
    printf 'deb [trusted=yes] %s %s main\n' "$uri" "${KES_LAB_ETCD35_SUITE:-sid}" >"$work/sources.list"
    aptopts=(-o APT::Sandbox::User=root -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o Dir::State::Lists="$work/lists" -o Dir::Cache::Archives="$work/archives" -o Debug::NoLocking=1)
    for i in 1 2 3; do apt-get "${aptopts[@]}" update -qq && break || { log "apt-get update failed (try $i)"; sleep 5; }; done
    (cd "$work" && apt-get "${aptopts[@]}" download etcd-server etcd-client >/dev/null)
    for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/root"; done
    ev=v$("$work/root/usr/bin/etcd" --version | awk '/etcd Version/ {print $3}')
    out="$cache/etcd/$ev"; rm -rf "$out"; mkdir -p "$out"
    for b in etcd etcdctl etcdutl; do cp "$work/root/usr/bin/$b" "$out/$b"; done
    touch "$out/.complete"; rm -rf "$work"; trap - EXIT
    log "etcd $ev: downloaded from Debian ${KES_LAB_ETCD35_SUITE:-sid} in $((SECONDS - t0)) s"
  fi
fi

if want etcd34; then
  if [ ! -x /usr/bin/etcd ]; then log "Debian's etcd-server is not installed (scripts/setup.sh installs it)"; exit 1; fi
  ev=v$(/usr/bin/etcd --version | awk '/etcd Version/ {print $3}')
  out="$cache/etcd/$ev"
  if done_in "$out"; then log "etcd $ev: cached in $out"
  else
    rm -rf "$out"; mkdir -p "$out"; cp /usr/bin/etcd /usr/bin/etcdctl "$out/"; touch "$out/.complete"
    log "etcd $ev: copied from Debian 12"
  fi
fi

if want envoy-check; then
  # Schema checker for the Envoy bootstrap the app renders (unit tests; no Envoy binary here).
  # One file in <cache>/bin (build_go would wipe the whole folder); rebuilt when its module's files
  # change (by content: a fresh clone's mtimes say nothing).
  out="$cache/bin/envoy-check"; src="$here/gobuild/envoy-check"
  stamp=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-64)
  if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
    log "envoy-check ($(modver envoy-check github.com/envoyproxy/go-control-plane/envoy)): cached in $out"
  else
    mkdir -p "$cache/bin"; t0=$SECONDS
    (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out.tmp.$$" kes.lab/envoy-check)
    mv "$out.tmp.$$" "$out"; echo "$stamp" > "$out.stamp"; log "envoy-check: built in $((SECONDS - t0)) s"
  fi
fi
