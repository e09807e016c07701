#!/usr/bin/env bash
# Our trainer against sb3-contrib's MaskablePPO on the Jetson layer-split scenario
# (scripts/sb3_side_by_side.py says what is compared and how). Installs stable-baselines3,
# sb3-contrib, torch and gymnasium from PyPI into a throwaway venv (BENCH_SB3_VENV, default
# /tmp/splitwise-sb3-venv, reused if present: PyPI's torch is the CUDA build, ~5 GB, run on CPU),
# builds the splitwise binary and the splitwise-gym wheel, and passes its arguments on
# (--seeds 0,1,2 --steps 300000 --threads N).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BENCH_SB3_VENV:-/tmp/splitwise-sb3-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --progress-bar off \
    "stable-baselines3==${SB3_VERSION:-2.9.2}" "sb3-contrib==${SB3_VERSION:-2.9.2}" \
    "torch==${TORCH_VERSION:-2.15.0}" "gymnasium==${GYMNASIUM_VERSION:-1.4.0}" "maturin==1.16.0"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release --locked -q --bin splitwise) >&2
rm -rf "$root/python/dist"
"$venv/bin/maturin" build --release --locked --quiet -m "$root/python/Cargo.toml" -o "$root/python/dist" >&2
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "$root"/python/dist/splitwise_gym-*.whl
cd /tmp && "$venv/bin/python" "$root/scripts/sb3_side_by_side.py" --binary "$target/release/splitwise" "$@"
