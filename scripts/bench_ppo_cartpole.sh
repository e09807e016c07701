#!/usr/bin/env bash
# Wall-clock time to solve CartPole-v1 (mean return >= 475 over 20 deterministic episodes,
# evaluated every 2048 env steps, budget 100k env steps): Stable-Baselines3 PPO with the RL Zoo
# CartPole hyperparameters (scripts/bench_sb3_cartpole.py, in a throwaway venv from PyPI) against
# our PPO with PpoConfig::cartpole_zoo() (agents/examples/cartpole_seeds.rs), same machine, same
# invocation, one after the other. Prints per seed steps to solve, wall s and SPS for both, where
# the time went, and the ratio of median wall times (SB3 / ours).
#
# Both clocks start before the envs and the model are built and include training and every
# periodic evaluation; neither includes process start-up, imports or compilation.
#
# Usage: scripts/bench_ppo_cartpole.sh
# Environment: SEEDS (default 0,1,2,3,4); BENCH_SB3_VENV (default /tmp/splitwise-sb3-venv, reused
# if present; delete it afterwards, it holds PyPI's CUDA-enabled torch build, ~5 GB, run on CPU);
# SB3_VERSION (2.9.2), TORCH_VERSION (2.15.0), GYMNASIUM_VERSION (1.4.0): the versions last measured;
# THREADS (default: nproc) for torch's intra-op threads and RAYON_NUM_THREADS alike (on a loaded
# 2-core machine torch with 2 threads slows down several-fold from oversubscription: THREADS=1 is
# SB3's faster setting there; ours is bit-identical and equally fast with either);
# CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BENCH_SB3_VENV:-/tmp/splitwise-sb3-venv}"
seeds="${SEEDS:-0,1,2,3,4}"
threads="${THREADS:-$(nproc)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --progress-bar off \
    "stable-baselines3==${SB3_VERSION:-2.9.2}" \
    "torch==${TORCH_VERSION:-2.15.0}" \
    "gymnasium==${GYMNASIUM_VERSION:-1.4.0}"

echo "== building agents/examples/cartpole_seeds.rs (release) ==" >&2
(cd "$root" && cargo build --release -q -p splitwise-agents --example cartpole_seeds) >&2

{
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
    echo "threads: torch.set_num_threads($threads), RAYON_NUM_THREADS=$threads"
    echo "rustc: $(rustc --version)"
} | tee "$work/machine.txt" >&2

echo "== ours: cargo run --release -p splitwise-agents --example cartpole_seeds -- --seeds $seeds ==" >&2
echo "load before ours: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/machine.txt" >&2
(cd "$root" && RAYON_NUM_THREADS="$threads" cargo run --release -q -p splitwise-agents \
    --example cartpole_seeds -- --seeds "$seeds") | tee "$work/ours.txt" >&2

echo "== SB3: scripts/bench_sb3_cartpole.py --seeds $seeds --threads $threads ==" >&2
echo "load before SB3: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/machine.txt" >&2
"$venv/bin/python" "$root/scripts/bench_sb3_cartpole.py" --seeds "$seeds" --threads "$threads" \
    | tee "$work/sb3.jsonl" >&2
echo "load after SB3: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/machine.txt" >&2

WORK="$work" "$venv/bin/python" - <<'EOF'
import json, os, statistics
from pathlib import Path

work = Path(os.environ["WORK"])
sb3_lines = [json.loads(l) for l in (work / "sb3.jsonl").read_text().splitlines() if l.startswith("{")]
sb3 = {r["seed"]: r for r in sb3_lines if not r.get("summary")}
sb3_summary = next(r for r in sb3_lines if r.get("summary"))

# cartpole_seeds prints: seed solved_at eval_return steps wall_s sps env_s act_s update_s eval_s
# ms/update weights_fnv ("no" in solved_at when the budget ran out).
ours = {}
for line in (work / "ours.txt").read_text().splitlines():
    f = line.split()
    if len(f) == 12 and f[0].isdigit():
        ours[int(f[0])] = {
            "solved": f[1] != "no",
            "steps": int(f[3]),
            "wall_s": float(f[4]),
            "sps": float(f[5]),
            "env_s": float(f[6]),
            "act_s": float(f[7]),
            "update_s": float(f[8]),
            "eval_s": float(f[9]),
        }
    elif len(f) >= 2 and f[0].isdigit() and f[1] == "error:":
        raise SystemExit(f"ours failed: {line}")

def cell(r):
    if r is None:
        return f"{'missing':>26}"
    steps = str(r["steps"]) if r["solved"] else f"no({r['steps']})"
    return f"{steps:>10} {r['wall_s']:8.2f} {r['sps']:6.0f}"

print((work / "machine.txt").read_text().rstrip())
print(f"versions: stable-baselines3 {sb3_summary['stable_baselines3']}, torch {sb3_summary['torch']}, "
      f"gymnasium {sb3_summary['gymnasium']}, numpy {sb3_summary['numpy']}, python {sb3_summary['python']}")
print()
print(f"{'':4} | {'SB3 PPO (RL Zoo)':^26} | {'ours (cartpole_zoo)':^26} |")
print(f"{'seed':>4} | {'steps':>10} {'wall_s':>8} {'sps':>6} | {'steps':>10} {'wall_s':>8} {'sps':>6} | {'SB3/ours':>8}")
for seed in sorted(set(sb3) | set(ours)):
    a, b = sb3.get(seed), ours.get(seed)
    ratio = f"{a['wall_s'] / b['wall_s']:8.1f}" if a and b and a["solved"] and b["solved"] else f"{'-':>8}"
    print(f"{seed:4} | {cell(a)} | {cell(b)} | {ratio}")

def med(rs, key, solved_only):
    xs = [r[key] for r in rs if r["solved"] or not solved_only]
    return statistics.median(xs) if xs else float("nan")

for name, rs in (("SB3", list(sb3.values())), ("ours", list(ours.values()))):
    n_solved = sum(r["solved"] for r in rs)
    print(f"{name:>4}: solved {n_solved}/{len(rs)} within 100k steps; median over solved seeds: "
          f"steps {med(rs, 'steps', True):.0f}, wall {med(rs, 'wall_s', True):.2f} s; "
          f"median SPS (steps / wall, eval included) {med(rs, 'sps', False):.0f}, "
          f"training only {statistics.median(r['steps'] / (r['wall_s'] - r['eval_s']) for r in rs):.0f}")

def split(rs, keys):
    total = sum(r["wall_s"] for r in rs)
    parts = ", ".join(f"{k[:-2]} {sum(r[k] for r in rs):.2f} s ({100 * sum(r[k] for r in rs) / total:.0f}%)" for k in keys)
    return f"{parts} of {total:.2f} s"

print("time split, all seeds summed:")
print(f"  SB3:  {split(sb3.values(), ['rollout_s', 'update_s', 'eval_s'])}  (rollout = env + acting)")
print(f"  ours: {split(ours.values(), ['env_s', 'act_s', 'update_s', 'eval_s'])}  (rest: setup and bookkeeping)")
ratio = med(list(sb3.values()), "wall_s", True) / med(list(ours.values()), "wall_s", True)
print(f"ratio of median wall time to solve, SB3 / ours: {ratio:.1f}x")
if not all(r["solved"] for r in list(sb3.values()) + list(ours.values())):
    print("note: some seeds did not solve within 100k steps; the medians above are over solved seeds only")
EOF
