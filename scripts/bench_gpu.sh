#!/usr/bin/env bash
# PPO update and acting throughput on the GPU (burn's wgpu backend) against the CPU (flex), on
# the networks of configs/ppo-jetson-layer-split.toml, in one run (examples/bench_devices.rs):
# updates over batches of 256 … 65,536 samples, greedy acting over 1 … 65,536 rows. Prints the
# machine's Vulkan devices (wgpu takes the high-performance one) and two markdown tables for
# BENCHMARKS.md ("GPU backend").
#
# Usage: scripts/bench_gpu.sh [--devices cpu,wgpu] [--max-batch N] [--json PATH]
#   --max-batch caps both the update batches and the acting rows.
# Environment: CARGO_TARGET_DIR (default <repo>/target/wgpu, as scripts/wgpu_cross_device.sh;
# the example's dev-dependencies add a few crates of their own).
# Needs the Vulkan loader, libvulkan.so.1 (Debian: libvulkan1; NVIDIA's and AMD's drivers bring
# their Vulkan driver; Mesa's mesa-vulkan-drivers adds software Vulkan, lavapipe, which runs the
# same code without a GPU). On macOS wgpu uses Metal and needs nothing else. wgpu picks the
# high-performance adapter; CUBECL_WGPU_DEFAULT_DEVICE overrides (cubecl's variable).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/wgpu}"
# The same profile as scripts/wgpu_cross_device.sh (no debug info).
export CARGO_PROFILE_RELEASE_DEBUG=false
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# grep reads all of ldconfig's output (with `grep -q` and pipefail, SIGPIPE reads as missing).
ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
if [[ "$(uname)" == Linux ]] && ! "$ldconfig" -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null; then
    echo "error: no Vulkan loader (libvulkan.so.1): install libvulkan1 and your GPU's Vulkan driver" >&2
    exit 1
fi

cd "$root"
cargo build --release --locked --features wgpu --example bench_devices >&2
# A stripped copy: one self-contained file (about 20 MB) to carry to a GPU machine of the same
# OS and architecture, which then needs only its Vulkan driver and loader.
bench="$CARGO_TARGET_DIR/gpu-bench/bench_devices"
mkdir -p "$(dirname "$bench")"
cp "$CARGO_TARGET_DIR/release/examples/bench_devices" "$bench.tmp"
strip "$bench.tmp" 2>/dev/null || true
mv "$bench.tmp" "$bench"
echo "machine: $(uname -srm), $(nproc 2>/dev/null || sysctl -n hw.ncpu) CPU threads"
if command -v vulkaninfo >/dev/null; then
    vulkaninfo --summary 2>/dev/null | grep -E 'deviceName|deviceType|driverName' | sed 's/^ */adapter: /' || true
fi
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/nvidia: /' || true
fi
# Run from the repository: the benchmark reads configs/ppo-jetson-layer-split.toml.
"$bench" "$@"
