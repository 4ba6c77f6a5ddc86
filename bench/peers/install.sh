#!/usr/bin/env bash
# Installs the peers of weir's side-by-side benchmarks from Debian's packages,
# if they are missing: by default VictoriaMetrics (package victoria-metrics,
# 1.79 in bookworm) and InfluxDB 1.x (package influxdb, 1.6.7 in bookworm);
# or the packages named as arguments (the agent benchmark passes
# prometheus-node-exporter).
#
#   bash bench/peers/install.sh                            # the storage peers
#   bash bench/peers/install.sh prometheus-node-exporter   # the agent's peer
#
# The benchmark starts its own instances on loopback with their own data
# directories, so a service that a package starts (or enables) is stopped and
# disabled again: nothing listens on the default ports afterwards.
#
# Idempotent: a second run installs nothing and only prints the versions.
# Needs root (or sudo) for apt-get when something is missing.
set -euo pipefail

if [ "$#" -gt 0 ]; then packages=("$@"); else packages=(victoria-metrics influxdb); fi
# Each package's service has the package's name.
services=("${packages[@]}")

# The binary each package provides.
binary_of() {
    case "$1" in
        influxdb) echo influxd ;;
        *) echo "$1" ;;
    esac
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # An old or empty package list finds nothing: refresh it once.
    as_root apt-get update -qq
    as_root apt-get install -y --no-install-recommends "${missing[@]}" >&2

    # Stop and disable whatever the packages started: the benchmark runs its own.
    for s in "${services[@]}"; do
        if [ -d /run/systemd/system ]; then
            as_root systemctl stop "$s" >/dev/null 2>&1 || true
        elif [ -x "/etc/init.d/$s" ]; then
            as_root /etc/init.d/"$s" stop >/dev/null 2>&1 || true
        fi
        if command -v systemctl >/dev/null; then
            as_root systemctl disable "$s" >/dev/null 2>&1 || true
        fi
        if [ -x "/etc/init.d/$s" ] && command -v update-rc.d >/dev/null; then
            as_root update-rc.d "$s" disable >/dev/null 2>&1 || true
        fi
    done
fi

for p in "${packages[@]}"; do
    bin=$(binary_of "$p")
    if ! command -v "$bin" >/dev/null; then
        echo "install.sh: $bin not found after installing ${packages[*]}" >&2
        exit 1
    fi
    # Debian's victoria-metrics binary reports an empty version: print the package's too.
    case "$p" in
        influxdb) version=$(influxd version 2>&1 | head -n 1 || true) ;;
        *) version=$("$bin" --version 2>&1 | head -n 1 || true) ;;
    esac
    echo "$p: package $(dpkg-query -W -f='${Version}' "$p") ${version:+(${version})}"
done
