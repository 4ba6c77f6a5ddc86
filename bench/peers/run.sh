#!/usr/bin/env bash
# weir's side-by-side benchmark against VictoriaMetrics and InfluxDB 1.x, in one run.
#
#   bash bench/peers/run.sh                     # the full benchmark (takes several minutes)
#   bash bench/peers/run.sh --hosts 10 --hours 2 --runs 3 --systems influxdb,weir   # a quick try
#
# Builds weir and weir-bench (release) from this checkout, installs the peers
# from Debian's packages if missing (bench/peers/install.sh, needs root or
# sudo), then runs bench/peers/run.py with the options given here (see
# `python3 bench/peers/run.py --help`). The results go as JSON to
# $CARGO_TARGET_DIR/weir-peers/results-<UTC time>.json unless --out is given.
# See bench/README.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "run.sh: needs Python 3.11 or newer (python3 is $(python3 --version 2>&1))" >&2
    exit 1
fi

cargo build --release -p weir-bench -p weir
bash bench/peers/install.sh

out_dir="$CARGO_TARGET_DIR/weir-peers"
mkdir -p "$out_dir"
exec python3 bench/peers/run.py \
    --weir-bench "$CARGO_TARGET_DIR/release/weir-bench" \
    --weir "$CARGO_TARGET_DIR/release/weir" \
    --out "$out_dir/results-$(date -u +%Y%m%dT%H%M%SZ).json" \
    "$@"
