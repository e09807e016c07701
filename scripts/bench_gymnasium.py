#!/usr/bin/env python3
"""Times Gymnasium's CartPole-v1 `step` for comparison with env/benches/env_steps.rs.

Two variants: `gymnasium.make("CartPole-v1")` with its default wrappers (TimeLimit,
OrderEnforcing, PassiveEnvChecker) and its `.unwrapped` CartPoleEnv. Actions are random but drawn
before timing; an episode that ends is reset inside the timed loop, as the Rust benchmark does.
Each variant is timed REPEATS times after a warm-up; the median run is reported. Prints JSON.

Run by scripts/bench_cartpole.sh (which creates the venv), or directly:
    python3 scripts/bench_gymnasium.py [--steps N]
"""

import argparse
import json
import platform
import statistics
import time

import gymnasium
import numpy as np

REPEATS = 5


def time_steps(env, actions):
    """Seconds to take len(actions) steps, resetting whenever an episode ends."""
    env.reset(seed=0)
    step, reset = env.step, env.reset
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = step(a)
        if terminated or truncated:
            reset()
    return time.perf_counter() - start


def measure(env, actions):
    time_steps(env, actions[: len(actions) // 10])  # warm-up
    seconds = statistics.median(time_steps(env, actions) for _ in range(REPEATS))
    n = len(actions)
    return {"steps": n, "seconds": seconds, "steps_per_s": n / seconds, "ns_per_step": 1e9 * seconds / n}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000, help="steps per timed run")
    args = parser.parse_args()
    # Python ints, like `action_space.sample()` would give after `int(...)`.
    actions = [int(a) for a in np.random.default_rng(0).integers(0, 2, args.steps)]
    wrapped = gymnasium.make("CartPole-v1")
    result = {
        "gymnasium_version": gymnasium.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "repeats": REPEATS,
        "wrapped": measure(wrapped, actions),
        "unwrapped": measure(wrapped.unwrapped, actions),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
