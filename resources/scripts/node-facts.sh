#!/usr/bin/env bash
# Prints facts about a node as KEY=VALUE lines. Read-only: changes nothing on the node.
# Used by "Test connection"; safe to run by hand.
set -u
echo "HOSTNAME=$(hostname 2>/dev/null || cat /etc/hostname)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "OS=${PRETTY_NAME:-$NAME}"; else echo "OS=$(uname -s)"; fi
echo "KERNEL=$(uname -r)"
echo "USER=$(id -un)"
echo "UID=$(id -u)"
if [ "$(id -u)" = 0 ]; then echo "SUDO=root"; elif sudo -n true 2>/dev/null; then echo "SUDO=passwordless"; else echo "SUDO=no"; fi
