"""A Python policy evaluated by splitwise's evaluator: the same episodes, rows and headroom
section as `splitwise eval`."""

import numpy as np
import pytest

import splitwise_gym


def cloud_only(obs, mask):
    return 0  # split 0: every layer in the cloud


def test_a_python_policy_gets_the_same_numbers_as_the_same_plan_in_rust(repo, tmp_path):
    scenario = repo / "tests/fixtures/tiny-cloud-load.toml"
    seen = []

    class Recorder:
        def __call__(self, obs, mask):
            assert obs.dtype == np.float32 and mask.dtype == np.bool_
            return 0

        def reset(self, seed):
            seen.append(seed)

    m = splitwise_gym.evaluate(
        scenario,
        {"python-cloud": cloud_only, "recorder": Recorder()},
        baselines="cloud-only",
        episodes=3,
        seed=5,
        slots=60,
        mode="layer-split",
        out=tmp_path / "report",
    )
    rows = {r["label"]: r for r in m["scenarios"][0]["rows"]}
    assert {"python-cloud", "recorder", "cloud-only", "best-fixed", "clairvoyant"} <= set(rows)
    for key in ["drift_plus_penalty", "latency_mean_s", "energy_per_request_j"]:
        assert rows["python-cloud"]["metrics"][key]["mean"] == rows["cloud-only"]["metrics"][key]["mean"], key
    assert rows["python-cloud"]["learned"] is True
    assert seen == [splitwise_gym.derive_seed(5, k) for k in range(3)]
    c = splitwise_gym.capture(m, "python-cloud")
    assert c is None or set(c) >= {"mean", "lo", "hi"}
    report = (tmp_path / "report" / "report.md").read_text()
    assert "python-cloud" in report and "splitwise_gym.evaluate(" in report


def test_an_exception_in_the_policy_reaches_the_caller(repo):
    def broken(obs, mask):
        raise RuntimeError("policy exploded")

    with pytest.raises(RuntimeError, match="policy exploded"):
        splitwise_gym.evaluate(
            repo / "tests/fixtures/tiny-cloud-load.toml", {"broken": broken}, baselines="cloud-only",
            episodes=1, slots=5, no_headroom=True, mode="layer-split",
        )


def test_bad_returns_and_specs_are_errors(repo):
    sc = repo / "tests/fixtures/tiny-cloud-load.toml"
    with pytest.raises(TypeError, match="must return an int or a sequence"):
        splitwise_gym.evaluate(sc, {"p": lambda o, m: "zero"}, baselines="cloud-only", episodes=1, slots=5,
                               no_headroom=True, mode="layer-split")
    with pytest.raises(splitwise_gym.ConfigError, match="policy `nosuch`"):
        splitwise_gym.evaluate(sc, {}, baselines="nosuch", episodes=1, slots=5, no_headroom=True)
    with pytest.raises(splitwise_gym.ConfigError, match="ckpt:PATH.*splitwise eval"):
        splitwise_gym.evaluate(sc, {}, baselines="ckpt:/tmp/x", episodes=1, slots=5, no_headroom=True)
