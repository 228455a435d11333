#!/usr/bin/env bash
# Put an uploaded file in place atomically with the given mode: copy next to the target under a
# hidden name (the kubelet ignores dotfiles in its manifest folder), then rename over it.
# Usage: bash install-file.sh UPLOADED DEST MODE
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: install-file.sh UPLOADED DEST MODE" >&2; exit 2; }
src=$1 dest=$2 mode=$3
case "$dest" in /*) ;; *) echo "destination must be absolute: $dest" >&2; exit 2;; esac
dir=$(dirname "$dest")
mkdir -p "$dir"
tmp="$dir/.$(basename "$dest").kes-new"
install -m "$mode" "$src" "$tmp"
mv -f "$tmp" "$dest"
rm -f "$src"
echo "KES_INSTALLED=$dest"
