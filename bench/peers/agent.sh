#!/usr/bin/env bash
# weir agent vs prometheus-node-exporter, side by side: CPU per collection and RSS.
#
#   bash bench/peers/agent.sh                       # 5 minutes of 10 s collections
#   bash bench/peers/agent.sh --duration 60         # a quick try
#   bash bench/peers/agent.sh --agent-binary weir   # `weir agent` instead of the agent-only `weir-agent`
#
# Builds weir (release) from this checkout, installs Debian's
# prometheus-node-exporter if missing, then runs bench/peers/agent.py with
# the options given here. See bench/README.md.
set -euo pipefail

cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# The same package set as run.sh, so the two share one release build.
cargo build --release -p weir-bench -p weir
bash bench/peers/install.sh prometheus-node-exporter

out_dir="$CARGO_TARGET_DIR/weir-peers"
mkdir -p "$out_dir"
exec python3 bench/peers/agent.py \
    --weir "$CARGO_TARGET_DIR/release/weir" \
    --out "$out_dir/agent-$(date -u +%Y%m%dT%H%M%SZ).json" \
    "$@"
