#!/usr/bin/env bash
# Model-based RL against model-free PPO on ALS's environment (issue 13): 3 seeds each, writes the
# "Model-based RL on ALS" section of RESULTS.md (expensive evaluations to reach model-free PPO's
# return). About 2 min on 2 cores after the build; finished runs under $OUT are reused.
#
#   scripts/mbrl_als.sh
#   SEEDS="0" OUT=runs/mbrl-als-1 scripts/mbrl_als.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SEEDS="${SEEDS:-0 1 2}"
OUT="${OUT:-runs/mbrl-als}"
cargo build --release --locked --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/splitwise"
python3 scripts/mbrl_als.py --binary "$BIN" --out "$OUT" --seeds "$SEEDS" \
  --command "scripts/mbrl_als.sh (SEEDS=\"$SEEDS\")"
