"""The Ray Tune example, in local mode with a tiny budget: two trials of `splitwise train`
report their evaluations through the JSON lines and ASHA picks the better one."""

import importlib.util
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")


def binary(repo: Path) -> Path | None:
    env = os.environ.get("SPLITWISE_BIN")
    if env:
        return Path(env)
    for p in [repo / "target/release/splitwise"]:
        if p.is_file():
            return p
    return None


def test_the_sweep_runs_trials_through_the_cli_and_picks_the_best(repo, tmp_path, capsys):
    exe = binary(repo)
    if exe is None or not exe.is_file():
        pytest.skip("no splitwise binary (set SPLITWISE_BIN or cargo build --release)")
    spec = importlib.util.spec_from_file_location("tune_sweep", repo / "examples/ray/tune_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    try:
        results = sweep.main([
            "--config", str(repo / "configs/ppo-jetson-layer-split.toml"),
            "--binary", str(exe),
            "--samples", "2",
            "--total-steps", "4096",
            "--eval-every-steps", "2048",
            "--storage", str(tmp_path / "tune"),
        ])
    finally:
        ray.shutdown()
    assert len(results) == 2 and not results.errors
    # Every trial reported its evaluations (one Tune iteration per evaluation, 2048 env steps
    # apart); ASHA may stop the worse one after its first.
    for r in results:
        assert r.metrics["env_steps"] == 2048 * r.metrics["training_iteration"]
        assert sweep.METRIC in r.metrics
    best = results.get_best_result(metric=sweep.METRIC, mode="max", scope="all")
    assert best.metrics["env_steps"] in (2048, 4096)
    out = capsys.readouterr().out
    assert "best trial: charts/eval_return = " in out and "held-out comparison:" in out
    runs = list((tmp_path / "tune" / "splitwise-runs").glob("*/checkpoints/*/config.toml"))
    assert len(runs) == 2, runs
    # The sampled hyperparameters reached the runs (--set), recorded in their resolved config.
    for r in results:
        text = (Path(r.metrics["run_dir"]) / "ppo-jetson-layer-split-seed0" / "config.toml").read_text()
        assert f"n_epochs = {r.config['agent']['n_epochs']}" in text
