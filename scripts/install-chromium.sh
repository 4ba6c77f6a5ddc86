#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium (and a font, so that text in
# screenshots is legible) when it is missing: the dashboard's browser test
# drives it. Non-interactive; needs root or passwordless sudo. Exits non-zero,
# saying what is missing, when it cannot install.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-chromium: chromium is missing and this user cannot install it (not root, no passwordless sudo); run: apt-get install -y chromium fonts-dejavu-core" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: chromium is missing and there is no apt-get here; install Chromium by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt run (unattended upgrades, a parallel install) holds the lock
# for a while at most: wait for it rather than fail.
apt=(apt-get -y -q -o DPkg::Lock::Timeout=600)
"${as_root[@]}" "${apt[@]}" update
"${as_root[@]}" "${apt[@]}" install --no-install-recommends chromium fonts-dejavu-core

if ! command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: apt-get finished but there is still no chromium on PATH" >&2
    exit 1
fi
