#!/usr/bin/env python3
"""Our trainer against Stable-Baselines3 on our own problem: sb3-contrib's MaskablePPO trained on
the partition environment through the Python bindings, and `splitwise train`, on the same
scenario with the same hyperparameters where they correspond and the same env-step budget;
wall-clock and the capture of the headroom on the same held-out episodes for both.

Scenario and hyperparameters: configs/ppo-jetson-layer-split.toml (Jetson Orin NX + LLaMA-7B over
LTE, layer-split action, 500-slot episodes): 8 envs, n_steps 256, batch 256, 10 epochs, lr 3e-4
linear to 0, γ 0, GAE λ 0.95, clip 0.2, ent_coef 0.01, vf_coef 0.5, max_grad_norm 0.5, Adam ε
1e-5, separate 64-64 tanh actor and critic with orthogonal init (SB3's MlpPolicy defaults),
observations and rewards normalised (SB3: VecNormalize with γ 0, clip 10, as ours). The masks
come from `action_masks()` (MaskablePPO) and are the masks our trainer applies.

Rows:
- ``splitwise``: the config as shipped (all-action advantage, per-network gradient clipping: our
  trainer's own algorithm; SB3 has no equivalent);
- ``splitwise-gae``: the same with `--set agent.advantage=critic --set agent.grad_clip=global`,
  the standard PPO/GAE update SB3 runs (the like-for-like row for speed);
- ``sb3-maskable-ppo``: MaskablePPO, DummyVecEnv of 8 `SplitwiseEnv`.

Evaluation: every snapshot (ours: the checkpoints every 50k steps and `best/`, chosen on its own
evaluation seeds; SB3: every 24 rollouts = 49,152 steps and the final model) acts
deterministically (greedy legal action) on the 10 held-out episodes of seed 7919 that
`splitwise train`'s end-of-training comparison uses, beside `best-fixed` and `clairvoyant`:
capture = (best static − policy)/(best static − bound) of the mean Δ + V·p. Our snapshots are
evaluated by `splitwise eval`, SB3's by `splitwise_gym.evaluate` (the same runner and episodes:
the script checks that both report the same best static plan and bound).

Clock: wall-clock of training only (SB3: model construction to the end of `learn()`, snapshot
evaluations excluded; ours: process start to exit, with its periodic evaluations on its own seeds
included). Time to a capture: the first snapshot at or above it.

    scripts/sb3_side_by_side.sh [--seeds 0,1,2] [--steps 300000]   # JSON per run, then a summary
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs/ppo-jetson-layer-split.toml"
SCENARIO = "jetson-llama7b-lte"
OPTIONS = {"mode": "layer-split", "episode_slots": 500}
HELD_OUT_SEED = 7919
EPISODES = 10
SNAPSHOT_ROLLOUTS = 24
BASELINES = "static-best,neurosurgeon,failover,dpp-one-slot"


def capture_rows(metrics: dict) -> tuple[dict, dict]:
    s = metrics["scenarios"][0]
    caps = {r["label"]: c["mean"] for r in s["headroom"]["rows"] for c in r["captures"] if c["metric"] == "drift_plus_penalty"}
    dpp = {r["label"]: r["metrics"]["drift_plus_penalty"]["mean"] for r in s["rows"]}
    return caps, dpp


def run_splitwise(binary: str, seed: int, steps: int, work: Path, label: str, extra: list[str]) -> dict:
    out = work / label / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        binary, "train", "--config", str(CONFIG), "--seed", str(seed), "--final-report-episodes", "0",
        "--metrics-jsonl", str(out / "metrics.jsonl"),
        "--set", f"logging.checkpoints_dir={json.dumps(str(out))}",
        "--set", f"training.total_steps={steps}", "--set", "training.keep_last=100",
        *extra,
    ]
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - t0
    run = next(out.glob("ppo-jetson-layer-split-seed*"))
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    at = {l["step"]: l["wall_time"] - t0 for l in lines}
    updates = sum(l.get("time/update_s", 0.0) for l in lines)
    snaps = sorted((int(p.name.split("_")[1]), p) for p in run.glob("step_*") if int(p.name.split("_")[1]) > 0)
    policies = ",".join(f"s{n}=ckpt:{p}" for n, p in snaps) + f",best=ckpt:{run / 'best'},{BASELINES}"
    report = out / "eval"
    subprocess.run(
        [binary, "eval", "--config", str(run / "config.toml"), "--policies", policies, "--episodes", str(EPISODES),
         "--seed", str(HELD_OUT_SEED), "--trace-episodes", "0", "--out", str(report)],
        check=True, stdout=subprocess.DEVNULL,
    )
    caps, dpp = capture_rows(json.loads((report / "metrics.json").read_text()))
    curve = [{"step": n, "wall_s": at.get(n, float("nan")), "capture": caps.get(f"s{n}"), "dpp": dpp.get(f"s{n}")} for n, _ in snaps]
    return {
        "method": label, "seed": seed, "steps": steps, "wall_s": wall, "update_s": updates,
        "collect_and_eval_s": wall - updates, "final_capture": caps.get("best"), "final_dpp": dpp.get("best"),
        "final_is": "best/ (chosen on its own evaluation seeds)", "curve": curve,
        "references": {"best_static": dpp.get("best-fixed"), "bound": dpp.get("clairvoyant")},
    }


def run_sb3(seed: int, steps: int, threads: int) -> dict:
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    from torch import nn

    import splitwise_gym
    from splitwise_gym import SplitwiseEnv

    torch.set_num_threads(threads)

    def schedule(initial):
        return lambda remaining: remaining * initial

    snapshots: list[dict] = []

    class Clock(BaseCallback):
        def __init__(self):
            super().__init__()
            self.rollout_s = 0.0
            self.paused = 0.0
            self.rollouts = 0

        def _on_rollout_start(self):
            self._t = time.perf_counter()

        def _on_rollout_end(self):
            self.rollout_s += time.perf_counter() - self._t
            self.rollouts += 1

        def _on_step(self):
            return True

        def _on_training_end(self):
            pass

    clock = Clock()

    class Snapshot(BaseCallback):
        """After every SNAPSHOT_ROLLOUTS updates: the policy's weights and the normaliser, off the clock."""

        def _on_rollout_start(self):
            if clock.rollouts and clock.rollouts % SNAPSHOT_ROLLOUTS == 0:
                t = time.perf_counter()
                snapshots.append(snap(self.model, self.training_env, time.perf_counter() - start - clock.paused))
                clock.paused += time.perf_counter() - t

        def _on_step(self):
            return True

    def snap(model, venv, wall):
        return {
            "step": model.num_timesteps,
            "wall_s": wall,
            "state": copy.deepcopy(model.policy.state_dict()),
            "obs_rms": copy.deepcopy(venv.obs_rms),
        }

    start = time.perf_counter()
    venv = DummyVecEnv([lambda: SplitwiseEnv(SCENARIO, **OPTIONS) for _ in range(8)])
    venv.seed(seed)
    venv = VecNormalize(venv, norm_obs=True, norm_reward=True, clip_obs=10.0, clip_reward=10.0, gamma=0.0)
    model = MaskablePPO(
        "MlpPolicy", venv, n_steps=256, batch_size=256, n_epochs=10, learning_rate=schedule(3e-4), gamma=0.0,
        gae_lambda=0.95, clip_range=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, seed=seed, device="cpu",
        policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": nn.Tanh}, verbose=0,
    )
    model.learn(total_timesteps=steps, callback=[clock, Snapshot()])
    wall = time.perf_counter() - start - clock.paused
    snapshots.append(snap(model, venv, wall))

    def policy_of(s):
        net = model.policy_class(**model.policy._get_constructor_parameters())
        net.load_state_dict(s["state"])
        net.set_training_mode(False)
        rms = s["obs_rms"]

        def act(obs, mask):
            x = np.clip((obs - rms.mean) / np.sqrt(rms.var + 1e-8), -10.0, 10.0).astype(np.float32)
            a, _ = net.predict(x, deterministic=True, action_masks=mask)
            return int(a)

        return act

    policies = {f"s{s['step']}": policy_of(s) for s in snapshots}
    metrics = splitwise_gym.evaluate(SCENARIO, policies, baselines=BASELINES, episodes=EPISODES, seed=HELD_OUT_SEED, **OPTIONS)
    caps, dpp = capture_rows(metrics)
    final = f"s{snapshots[-1]['step']}"
    return {
        "method": "sb3-maskable-ppo", "seed": seed, "steps": steps, "wall_s": wall, "rollout_s": clock.rollout_s,
        "update_s": wall - clock.rollout_s, "final_capture": caps.get(final), "final_dpp": dpp.get(final),
        "final_is": "the last model",
        "curve": [{"step": s["step"], "wall_s": s["wall_s"], "capture": caps.get(f"s{s['step']}"), "dpp": dpp.get(f"s{s['step']}")} for s in snapshots],
        "references": {"best_static": dpp.get("best-fixed"), "bound": dpp.get("clairvoyant")},
    }


def first_time(curve: list[dict], target: float) -> float | None:
    for p in curve:
        if p["capture"] is not None and p["capture"] >= target:
            return p["wall_s"]
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=300_000)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (RAYON_NUM_THREADS is set alike)")
    p.add_argument("--binary", default=str(REPO / "target/release/splitwise"))
    p.add_argument("--work", default=None)
    p.add_argument("--only", default="splitwise,splitwise-gae,sb3-maskable-ppo")
    args = p.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="sb3-side-by-side-"))
    only = set(args.only.split(","))
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        if "splitwise" in only:
            runs.append(run_splitwise(args.binary, seed, args.steps, work, "splitwise", []))
            print(json.dumps(runs[-1]), flush=True)
        if "splitwise-gae" in only:
            runs.append(run_splitwise(args.binary, seed, args.steps, work, "splitwise-gae",
                                      ["--set", "agent.advantage=critic", "--set", "agent.grad_clip=global"]))
            print(json.dumps(runs[-1]), flush=True)
        if "sb3-maskable-ppo" in only:
            runs.append(run_sb3(seed, args.steps, args.threads))
            print(json.dumps(runs[-1]), flush=True)
    refs = {(r["references"]["best_static"], r["references"]["bound"]) for r in runs}
    if len(refs) != 1:
        sys.exit(f"the evaluations disagree on the references (not the same episodes?): {refs}")
    import sb3_contrib
    import stable_baselines3
    import torch

    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, threads {args.threads}",
        "versions": {"stable_baselines3": stable_baselines3.__version__, "sb3_contrib": sb3_contrib.__version__, "torch": torch.__version__},
        "references": runs[0]["references"],
        "rows": [],
    }
    by = {}
    for r in runs:
        by.setdefault(r["method"], []).append(r)
    ours = by.get("splitwise", [])
    targets = sorted({round(r["final_capture"], 2) for r in ours if r["final_capture"] is not None})
    for method, rs in by.items():
        row = {
            "method": method,
            "wall_s": [round(r["wall_s"], 1) for r in rs],
            "final_capture": [None if r["final_capture"] is None else round(r["final_capture"], 3) for r in rs],
            "final_dpp": [None if r["final_dpp"] is None else round(r["final_dpp"], 3) for r in rs],
            "best_capture_on_curve": [max((p["capture"] for p in r["curve"] if p["capture"] is not None), default=None) for r in rs],
            "update_s": [round(r["update_s"], 1) for r in rs],
        }
        for t in [0.1, 0.0]:
            row[f"time_to_capture_{t}"] = [first_time(r["curve"], t) for r in rs]
        summary["rows"].append(row)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
