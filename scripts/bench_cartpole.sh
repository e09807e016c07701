#!/usr/bin/env bash
# Compares CartPole-v1 step throughput: Gymnasium (Python, from PyPI in a throwaway venv) against
# our Rust port (criterion benches `cartpole/step` and `vector_cartpole/step_8_envs` in
# env/benches/env_steps.rs). Prints both, and the ratio, as steps/s.
#
# Usage: scripts/bench_cartpole.sh
# Environment: BENCH_VENV (default /tmp/splitwise-bench-venv), GYMNASIUM_VERSION (default 1.4.0,
# the version env/src/cartpole.rs was checked against), GYM_STEPS (default 200000),
# CARGO_TARGET_DIR (default <repo>/target; criterion's results are read from it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${BENCH_VENV:-/tmp/splitwise-bench-venv}"
gym_version="${GYMNASIUM_VERSION:-1.4.0}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet "gymnasium==$gym_version"

echo "== Gymnasium $gym_version (Python) ==" >&2
gym_json="$("$venv/bin/python" "$root/scripts/bench_gymnasium.py" --steps "${GYM_STEPS:-200000}")"
echo "$gym_json" >&2

echo "== Rust (cargo bench -p splitwise-env --bench env_steps -- cartpole) ==" >&2
(cd "$root" && cargo bench -p splitwise-env --bench env_steps -- cartpole) >&2

# criterion writes <target>/criterion/<group>/<function>/new/{estimates,benchmark}.json; the
# median time per iteration divided into the elements per iteration gives steps/s.
GYM_JSON="$gym_json" CRITERION_DIR="$target_dir/criterion" "$venv/bin/python" - <<'EOF'
import json, os
from pathlib import Path

gym = json.loads(os.environ["GYM_JSON"])
root = Path(os.environ["CRITERION_DIR"])

def rust(group, function):
    d = root / group / function / "new"
    ns = json.loads((d / "estimates.json").read_text())["median"]["point_estimate"]
    elements = json.loads((d / "benchmark.json").read_text())["throughput"]["Elements"]
    return elements / (ns * 1e-9)

rows = [
    ("gymnasium make(CartPole-v1)", gym["wrapped"]["steps_per_s"]),
    ("gymnasium .unwrapped", gym["unwrapped"]["steps_per_s"]),
    ("rust CartPole", rust("cartpole", "step")),
    ("rust VecEnv<CartPole> x8", rust("vector_cartpole", "step_8_envs")),
]
print(f"{'implementation':32} {'steps/s':>14} {'ns/step':>10}")
for name, sps in rows:
    print(f"{name:32} {sps:14,.0f} {1e9 / sps:10.1f}")
ours = rows[2][1]
print(f"rust CartPole / gymnasium wrapped:   {ours / rows[0][1]:.1f}x")
print(f"rust CartPole / gymnasium unwrapped: {ours / rows[1][1]:.1f}x")
print(json.dumps({name: round(sps) for name, sps in rows}))
EOF
