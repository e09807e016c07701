#!/usr/bin/env bash
# The wgpu backend's checks (issue 15), on any machine: a real GPU, or none at all through Mesa's
# software Vulkan driver (lavapipe). CI only type-checks the `wgpu` feature: building the GPU
# stack takes tens of minutes on 2 cores, so run this before changing anything device-related
# and record the result (BENCHMARKS.md, "GPU backend").
#
# 1. agents/tests/cross_device.rs with --features wgpu: PPO updates on wgpu against flex from the
#    same seed (update statistics within 1e-3 relative, weights within 1e-4), learner states moving between
#    the devices exactly, greedy actions equal on both.
# 2. The CLI end to end with a wgpu binary: a run trained with --device wgpu is evaluated and
#    exported on the CPU and the reverse; the exported ONNX files are byte-identical whatever
#    device loaded the checkpoint; a run resumes on the other device.
#
# Usage: scripts/wgpu_cross_device.sh
# Environment: CARGO_TARGET_DIR (default <repo>/target/wgpu: the wgpu build's artifacts, about
# 4 GB, kept apart from the CPU build's), WORK (default: a temporary folder, removed at the end).
# Needs a Vulkan loader and driver on Linux: on Debian, `apt-get install libvulkan1
# mesa-vulkan-drivers` (done here when run as root and missing). macOS: Metal, nothing to install.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/wgpu}"
# Debug info of the GPU stack is most of its 15 GB debug target: leave it out.
export CARGO_PROFILE_RELEASE_DEBUG=false
# wgpu warns on every start without one (a private folder of our own, never a shared path).
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

# Is the Vulkan loader there? (grep reads all of ldconfig's output: with `grep -q` and
# pipefail, ldconfig's SIGPIPE would read as "missing"; ldconfig is in /sbin on Debian.)
has_vulkan() {
    local ldconfig
    ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
    "$ldconfig" -p 2>/dev/null | grep 'libvulkan\.so\.1' >/dev/null
}
if [[ "$(uname)" == Linux ]] && ! has_vulkan; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        apt-get update -q >&2
        apt-get install -y -q libvulkan1 mesa-vulkan-drivers >&2
    else
        echo "error: no Vulkan loader (libvulkan.so.1); install libvulkan1 and a driver (mesa-vulkan-drivers)" >&2
        exit 1
    fi
fi

cd "$root"
echo "== 1. cross-device tests (cargo test --release -p splitwise-agents --features wgpu --test cross_device) ==" >&2
time cargo test --release --locked -p splitwise-agents --features wgpu --test cross_device -- --nocapture --test-threads 1

echo "== 2. the CLI across devices ==" >&2
time cargo build --release --locked --features wgpu --bin splitwise
bin="$CARGO_TARGET_DIR/release/splitwise"
work="${WORK:-$(mktemp -d)}"
[[ -n "${WORK:-}" ]] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/runs"
# configs/smoke.toml, 2 updates; the run folders and outputs go to $work.
common=(--config configs/smoke.toml --set training.total_steps=512 --set "logging.checkpoints_dir=\"$work/runs\""
        --set logging.progress=never --final-report-episodes 0)
"$bin" train "${common[@]}" --run-name on-wgpu --device wgpu
"$bin" train "${common[@]}" --run-name on-cpu --device cpu
for run in on-wgpu on-cpu; do
    for device in cpu wgpu; do
        "$bin" eval --config configs/smoke.toml --policies "trained=ckpt:$work/runs/$run" --episodes 2 \
            --no-headroom --out "$work/eval-$run-$device" --device "$device" >/dev/null
        # Same file name in two folders: the graph's metadata names its sidecar.
        mkdir -p "$work/export-$run-$device"
        "$bin" export --checkpoint "$work/runs/$run" --out "$work/export-$run-$device/policy.onnx" \
            --device "$device" >/dev/null
    done
    # The policy's decisions (every request's outcome) and the ONNX graphs do not depend on where the
    # checkpoint was loaded.
    cmp "$work/eval-$run-cpu/per_request.csv" "$work/eval-$run-wgpu/per_request.csv"
    for f in "$work/export-$run-cpu"/*.onnx; do
        cmp "$f" "$work/export-$run-wgpu/$(basename "$f")"
    done
    echo "run $run: eval and export agree on cpu and wgpu" >&2
done
# A run started on the CPU resumes on wgpu, and back on the CPU.
switch=("${common[@]}" --set training.total_steps=1536 --run-name switch)
"$bin" train "${switch[@]}" --device cpu --stop-at-step 512
"$bin" train "${switch[@]}" --device wgpu --stop-at-step 1024 --resume "$work/runs/switch"
"$bin" train "${switch[@]}" --device cpu --resume "$work/runs/switch"
echo "a run started on cpu resumed on wgpu at step 512 and on cpu again at step 1024, to step 1536" >&2
echo "all wgpu checks passed" >&2
