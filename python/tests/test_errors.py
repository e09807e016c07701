"""Bad input raises a Python exception with splitwise's message: the file or field, the value
and what is allowed. Nothing panics."""

import numpy as np
import pytest

import splitwise_gym
from splitwise_gym import SplitwiseEnv, SplitwiseVectorEnv


def test_unknown_scenario_lists_the_shipped_ones():
    with pytest.raises(splitwise_gym.ConfigError, match="neither a file nor a shipped scenario; shipped: .*jetson-llama7b-lte"):
        SplitwiseEnv("jetson")


def test_a_bad_field_names_the_file_field_and_value(tmp_path, repo):
    text = (repo / "configs/jetson-llama7b-lte.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("nakagami_m = ", "nakagami_m = 0.1 #", 1))
    with pytest.raises(splitwise_gym.ConfigError) as e:
        SplitwiseEnv(bad)
    assert "bad.toml" in str(e.value) and "nakagami_m" in str(e.value) and "0.1" in str(e.value)


def test_overrides_and_kinds_are_checked():
    with pytest.raises(splitwise_gym.ConfigError, match="overrides: unknown field `moed`"):
        SplitwiseEnv("jetson-llama7b-lte", moed="layer-split")
    with pytest.raises(splitwise_gym.ConfigError, match="overrides: unknown variant `flat`"):
        SplitwiseEnv("jetson-llama7b-lte", mode="flat")
    with pytest.raises(splitwise_gym.ConfigError, match="unknown environment kind \"pong\"; allowed: partition, cartpole, als"):
        SplitwiseEnv(kind="pong")
    with pytest.raises(splitwise_gym.ConfigError, match="ALS options: unknown field"):
        SplitwiseEnv(kind="als", weight=3)
    with pytest.raises(splitwise_gym.ConfigError, match="num_envs = 0: must be 1 to 1024"):
        SplitwiseVectorEnv(kind="cartpole", num_envs=0)
    assert issubclass(splitwise_gym.ConfigError, ValueError)


def test_actions_outside_the_space_and_steps_before_reset():
    env = SplitwiseEnv("jetson-llama7b-lte", mode="layer-split")
    with pytest.raises(splitwise_gym.ResetNeeded):
        env._native.step(np.array([0]))
    env.reset(seed=0)
    with pytest.raises(splitwise_gym.ActionError, match=r"split_layer\) = 99 is outside 0..33"):
        env.step(99)
    with pytest.raises(splitwise_gym.ActionError, match="= -1 is outside"):
        env.step(-1)
    with pytest.raises(splitwise_gym.ActionError, match="action has 2 components, the action space has 1"):
        env.step([0, 0])
    venv = SplitwiseVectorEnv(kind="cartpole", num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(splitwise_gym.ActionError, match="vector env member 1: .*= 2 is outside 0..2"):
        venv._native.step(np.array([[0], [2]]))


def test_a_state_of_another_env_is_refused():
    a = SplitwiseEnv(kind="cartpole")
    b = SplitwiseEnv(kind="als")
    a.reset(seed=0)
    b.reset(seed=0)
    with pytest.raises(splitwise_gym.StateError):
        b.set_state(a.get_state())
    state = a.get_state()
    state["id"] = b.env_spec["id"]
    with pytest.raises(splitwise_gym.StateError, match="not a saved state of ALS"):
        b.set_state(state)
