"""Per-step overhead of the Python bindings over the Rust vector env, and Python-side step
throughput next to Gymnasium's own CartPole, measured in one run on one machine.

For each environment, one fixed action sequence (steps × 8 members, drawn from the action
space; infeasible plans are repaired as in the bindings' default) is stepped:

- ``rust``: the env crate's ``VecEnv`` in a plain Rust loop inside the extension module
  (``_native.bench_rust_vector``; same build, same process): the reference;
- ``native``: ``SplitwiseVectorEnv._native.step`` from Python (arrays across the boundary);
- ``vector``: ``SplitwiseVectorEnv.step`` (Gymnasium's step tuple and info dict), fresh arrays;
- ``vector_nocopy``: the same with ``copy=False`` (arrays reused, valid until the next step);
- ``sync``: ``gymnasium.vector.SyncVectorEnv`` over 8 ``SplitwiseEnv`` (the generic path);
- for CartPole also Gymnasium's ``CartPole-v1`` under ``SyncVectorEnv`` and its numpy-vectorised
  ``CartPoleVectorEnv`` (``vectorization_mode="vector_entry_point"``).

Each is timed ``--repeats`` times, interleaved (one of each per repeat); the median is reported. Overhead = vector / rust − 1.

    python scripts/bench_python_bindings.py --steps 20000   # JSON on stdout, a table on stderr
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

# One BLAS thread: after numpy's first BLAS call its idle worker threads spin on the other core of
# a 2-vCPU machine (measured with perf: ~3 % of the samples), which the Rust reference never pays.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import splitwise_gym  # noqa: E402
from splitwise_gym import SplitwiseEnv, SplitwiseVectorEnv, _native  # noqa: E402

N = 8


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_env(name: str, kind: str, scenario: str | None, options: dict, steps: int, repeats: int) -> dict:
    venv = SplitwiseVectorEnv(scenario, num_envs=N, kind=kind, **options)
    rng = np.random.default_rng(0)
    nvec = np.array(venv.env_spec["nvec"])
    actions = (rng.random((steps, N, len(nvec))) * nvec).astype(np.int64)
    opts = json.dumps({"infeasible": "repair", **options}) if kind == "partition" else (json.dumps(options) if options else None)

    def rust():
        t = _native.bench_rust_vector(kind, N, 0, actions, scenario=scenario, options=opts)
        return t

    def native():
        venv.reset(seed=0)
        step = venv._native.step
        for t in range(steps):
            step(actions[t])

    def vector():
        venv.reset(seed=0)
        for t in range(steps):
            venv.step(actions[t])

    nocopy = SplitwiseVectorEnv(scenario, num_envs=N, kind=kind, copy=False, **options)

    def vector_nocopy():
        nocopy.reset(seed=0)
        for t in range(steps):
            nocopy.step(actions[t])

    sync = gym.vector.SyncVectorEnv(
        [lambda: SplitwiseEnv(scenario, kind=kind, **options) for _ in range(N)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )
    flat = actions[:, :, 0] if len(nvec) == 1 else actions

    def sync_run():
        sync.reset(seed=0)
        for t in range(steps):
            sync.step(flat[t])

    # Interleaved: each repeat times every variant once, so a machine that slows down for a while
    # (a shared 2-vCPU VM) affects them alike; medians over the repeats.
    samples: dict[str, list[float]] = {"rust_s": [], "native_s": [], "vector_s": [], "vector_nocopy_s": []}
    for _ in range(repeats):
        samples["rust_s"].append(rust())
        for key, fn in [("native_s", native), ("vector_s", vector), ("vector_nocopy_s", vector_nocopy)]:
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)
    rust_s = statistics.median(samples["rust_s"])

    row = {
        "env": name,
        "steps": steps,
        "members": N,
        "rust_s": rust_s,
        "native_s": statistics.median(samples["native_s"]),
        "vector_s": statistics.median(samples["vector_s"]),
        "vector_nocopy_s": statistics.median(samples["vector_nocopy_s"]),
        "sync_s": timed(sync_run, max(1, repeats // 2)),
    }
    if kind == "cartpole":
        for label, mode in [("gymnasium_sync_s", "sync"), ("gymnasium_vector_s", "vector_entry_point")]:
            g = gym.make_vec("CartPole-v1", num_envs=N, vectorization_mode=mode)

            def gym_run(g=g):
                g.reset(seed=0)
                for t in range(steps):
                    g.step(flat[t])

            row[label] = timed(gym_run, repeats)
    row["overhead_vector"] = row["vector_s"] / row["rust_s"] - 1
    row["overhead_native"] = row["native_s"] / row["rust_s"] - 1
    row["overhead_vector_nocopy"] = row["vector_nocopy_s"] / row["rust_s"] - 1
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    rows = [
        bench_env("jetson-llama7b-lte (layer-split)", "partition", "jetson-llama7b-lte", {"mode": "layer-split"}, args.steps, args.repeats),
        bench_env("jetson-llama7b-lte (hierarchical)", "partition", "jetson-llama7b-lte", {"mode": "hierarchical"}, args.steps, args.repeats),
        bench_env("CartPole-v1", "cartpole", None, {}, args.steps, args.repeats),
    ]
    out = {
        "machine": f"{platform.machine()}, {platform.processor() or '?'}, python {platform.python_version()}",
        "versions": {"splitwise_gym": splitwise_gym.__version__, "gymnasium": gym.__version__, "numpy": np.__version__},
        "rows": rows,
    }
    print(json.dumps(out, indent=1))
    print("µs per vector step (all 8 members), median of the repeats", file=sys.stderr)
    us = lambda s, r: 1e6 * s / r["steps"]  # noqa: E731
    print(
        "| env (8 members) | Rust VecEnv | native call | SplitwiseVectorEnv.step | overhead | copy=False | overhead "
        "| SyncVectorEnv of SplitwiseEnv | Gymnasium SyncVectorEnv | Gymnasium CartPoleVectorEnv |",
        file=sys.stderr,
    )
    print("|---|---|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        g1 = f"{us(r['gymnasium_sync_s'], r):.1f}" if "gymnasium_sync_s" in r else "–"
        g2 = f"{us(r['gymnasium_vector_s'], r):.1f}" if "gymnasium_vector_s" in r else "–"
        print(
            f"| {r['env']} | {us(r['rust_s'], r):.1f} | {us(r['native_s'], r):.1f} | {us(r['vector_s'], r):.1f} | "
            f"{100 * r['overhead_vector']:+.0f} % | {us(r['vector_nocopy_s'], r):.1f} | "
            f"{100 * r['overhead_vector_nocopy']:+.0f} % | {us(r['sync_s'], r):.1f} | {g1} | {g2} |",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
