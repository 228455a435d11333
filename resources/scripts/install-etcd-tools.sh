#!/usr/bin/env bash
# Install etcd, etcdctl (and etcdutl when present) from an official release archive
# (etcd-vX.Y.Z-linux-ARCH.tar.gz) into /usr/local/bin, after checking its sha256 and that ARCH is
# this node's CPU.
# Usage: bash install-etcd-tools.sh ARCHIVE SHA256 [DEST]
set -euo pipefail
archive=$1 want=$2 dest=${3:-/usr/local/bin}
got=$(sha256sum "$archive" | cut -d' ' -f1)
[ "$got" = "$want" ] || { echo "archive sha256 mismatch: $got != $want" >&2; exit 3; }
t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
tar --no-same-owner -xzf "$archive" -C "$t"
# A release holds regular files and folders only; a link or device could make install copy another file.
if [ -n "$(find "$t" -mindepth 1 ! -type f ! -type d -print -quit)" ]; then
  echo "refusing: the archive holds links or special files" >&2; exit 4
fi
top=$(find "$t" -mindepth 1 -maxdepth 1 -type d -name 'etcd-v*' | head -n1)
[ -n "$top" ] || { echo "not an etcd release archive (no etcd-v*/ folder)" >&2; exit 4; }
# Binaries for another CPU would install fine and then fail to run: refuse them here.
case "$(uname -m)" in x86_64) mine=amd64;; aarch64|arm64) mine=arm64;; ppc64le) mine=ppc64le;; s390x) mine=s390x;; *) mine=$(uname -m);; esac
built=${top##*-}
[ "$built" = "$mine" ] || { echo "refusing: $(basename "$top") is built for $built, this node is $(uname -m) ($mine)" >&2; exit 6; }
mkdir -p "$dest"
installed=()
for b in etcd etcdctl etcdutl; do
  if [ -f "$top/$b" ]; then install -m 0755 "$top/$b" "$dest/$b"; installed+=("$b"); fi
done
[ ${#installed[@]} -gt 0 ] || { echo "archive holds no etcd binaries" >&2; exit 4; }
rm -f "$archive"
echo "KES_INSTALLED=${installed[*]}"
echo "KES_DEST=$dest"   # the app calls them by these absolute paths from now on
echo "KES_VERSION=$("$dest/etcdctl" version 2>/dev/null | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n1)"
