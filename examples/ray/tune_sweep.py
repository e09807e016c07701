"""A Ray Tune hyperparameter sweep of ``splitwise train`` with ASHA early stopping.

Each trial is one CLI run: ``splitwise train --config BASE --seed S --set agent.K=V … --metrics-jsonl -``.
The trial reads the JSON lines the run writes to stdout (one per training round, the TensorBoard
tags) and reports every periodic evaluation to Tune (``charts/eval_return``: the mean return on the
run's own evaluation seeds, never the held-out ones, so choosing hyperparameters does not peek at
the seeds the final comparison uses). ASHA stops trials whose evaluation return falls behind.

On a laptop::

    cargo build --release
    python examples/ray/tune_sweep.py --config configs/ppo-jetson-layer-split.toml --samples 8

On a Ray cluster, unchanged: ``ray job submit -- python examples/ray/tune_sweep.py …`` (the
``splitwise`` binary and the config must exist at the same paths on every node, e.g. a shared
file system or a container image; ``--binary`` names it). Each trial asks Tune for ``--cpus-per-trial``
CPUs (the trainer's collection is single-threaded; its burn updates use what rayon finds).

At the end it prints the best trial's hyperparameters, its run folder and the ``splitwise eval``
command that compares its best checkpoint with the baselines on the held-out seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

#: The metric ASHA and the final choice use (higher is better).
METRIC = "charts/eval_return"


def _die_with_parent() -> None:
    """Linux: the run is killed with its trial (ASHA stops a trial by ending its worker)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def trial(config: dict) -> None:
    """One Tune trial: a `splitwise train` run, its evaluations reported as they arrive."""
    ctx = tune.get_context()
    # The run writes its checkpoints under the sweep's storage (shared storage on a cluster), one
    # folder per trial; its log goes beside them.
    run_dir = Path(config["runs_root"]) / ctx.get_trial_name()
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        config["binary"],
        "train",
        "--config",
        config["base_config"],
        "--seed",
        str(config["seed"]),
        "--metrics-jsonl",
        "-",
        "--final-report-episodes",
        "0",
        "--set",
        f"logging.checkpoints_dir={json.dumps(str(run_dir / 'checkpoints'))}",
        "--set",
        f"training.total_steps={config['total_steps']}",
        "--set",
        f"training.eval_every_steps={config['eval_every_steps']}",
        "--set",
        f"training.checkpoint_every_steps={config['eval_every_steps']}",
    ]
    for key, value in config["agent"].items():
        cmd += ["--set", f"agent.{key}={json.dumps(value)}"]
    log = open(run_dir / "splitwise.log", "w")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, preexec_fn=_die_with_parent)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            row = json.loads(line)
            if METRIC in row:
                tune.report({METRIC: row[METRIC], "env_steps": row["step"], "run_dir": str(run_dir / "checkpoints")})
        if proc.wait() != 0:
            log.flush()
            tail = (run_dir / "splitwise.log").read_text()[-2000:]
            raise RuntimeError(f"splitwise train exited with {proc.returncode}: {' '.join(cmd)}\n{tail}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def search_space(args: argparse.Namespace) -> dict:
    return {
        "binary": args.binary,
        "base_config": str(Path(args.config).resolve()),
        "runs_root": str(Path(args.storage).resolve() / "splitwise-runs"),
        "seed": args.seed,
        "total_steps": args.total_steps,
        "eval_every_steps": args.eval_every_steps,
        "agent": {
            "learning_rate": tune.loguniform(3e-5, 1e-3),
            "ent_coef": tune.choice([0.0, 0.003, 0.01]),
            "n_epochs": tune.choice([4, 10]),
        },
    }


def main(argv: list[str] | None = None) -> tune.ResultGrid:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="training config the trials start from")
    p.add_argument("--binary", default=shutil.which("splitwise") or str(Path("target/release/splitwise").resolve()))
    p.add_argument("--samples", type=int, default=8, help="trials (hyperparameter draws)")
    p.add_argument("--seed", type=int, default=0, help="training seed of every trial")
    p.add_argument("--total-steps", type=int, default=300_000)
    p.add_argument("--eval-every-steps", type=int, default=25_000)
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--storage", default=str(Path("runs/ray-tune").resolve()), help="Tune's results folder")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray locally)")
    args = p.parse_args(argv)
    if not Path(args.binary).is_file():
        sys.exit(f"no splitwise binary at {args.binary}: build it (cargo build --release) or pass --binary")
    ray.init(address=args.address, ignore_reinit_error=True, include_dashboard=False)
    scheduler = ASHAScheduler(
        metric=METRIC,
        mode="max",
        max_t=max(1, args.total_steps // args.eval_every_steps),
        grace_period=1,
        reduction_factor=2,
    )
    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": args.cpus_per_trial}),
        param_space=search_space(args),
        tune_config=tune.TuneConfig(num_samples=args.samples, scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=args.storage, name="splitwise-sweep", verbose=1),
    )
    results = tuner.fit()
    best = results.get_best_result(metric=METRIC, mode="max", scope="all")
    runs = Path(best.metrics["run_dir"])
    run = next(iter(sorted(runs.iterdir())), runs) if runs.is_dir() else runs
    print(f"best trial: {METRIC} = {best.metrics[METRIC]:.4f} at {best.metrics['env_steps']} env steps")
    print(f"hyperparameters: {json.dumps(best.config['agent'])}")
    print(f"run folder: {run}")
    print(
        f"held-out comparison: {args.binary} eval --config {run}/config.toml "
        f"--policies trained=ckpt:{run}/best,static-best,neurosurgeon,failover --out runs/ray-tune-best-eval"
    )
    return results


if __name__ == "__main__":
    main()
