"""Every registered environment passes Gymnasium's own checker, and the spaces, masks and info
are what the package documents."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import splitwise_gym
from splitwise_gym import ActionMaskObservation, SplitwiseEnv

IDS = [i for i in splitwise_gym.registered_ids() if i != "splitwise/Partition-v1"]


def test_every_shipped_scenario_is_registered():
    assert splitwise_gym.SCENARIOS, "the module compiles the shipped scenarios in"
    for name in ["jetson-llama7b-lte", "subway-commute-phone", "pi5-gpt2xl-wifi"]:
        assert name in splitwise_gym.SCENARIOS
        assert f"splitwise/{name}-v1" in gym.registry
    spec = gym.registry["splitwise/jetson-llama7b-lte-v1"]
    assert spec.entry_point == "splitwise_gym.env:SplitwiseEnv"
    assert spec.vector_entry_point == "splitwise_gym.vector:SplitwiseVectorEnv"


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes_without_warnings(env_id):
    env = gym.make(env_id).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env, skip_render_check=True)


@pytest.mark.parametrize("mode", ["layer-split", "hierarchical"])
def test_check_env_on_a_scenario_file_and_both_action_modes(repo, mode):
    env = gym.make("splitwise/Partition-v1", scenario=repo / "tests/fixtures/tiny-cloud-load.toml", mode=mode).unwrapped
    check_env(env, skip_render_check=True)


def test_check_env_with_the_rllib_dict_observation():
    env = ActionMaskObservation(SplitwiseEnv("jetson-llama7b-lte", mode="layer-split"))
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert set(obs) == {"observations", "action_mask"}
    assert obs["action_mask"].dtype == np.float32
    np.testing.assert_array_equal(obs["action_mask"] > 0.5, env.unwrapped.action_masks())


def test_spaces_follow_the_action_mode():
    flat = SplitwiseEnv("jetson-llama7b-lte", mode="layer-split")
    hier = SplitwiseEnv("jetson-llama7b-lte", mode="hierarchical")
    assert isinstance(flat.action_space, gym.spaces.Discrete)
    assert isinstance(hier.action_space, gym.spaces.MultiDiscrete)
    assert flat.observation_space.shape == (len(flat.env_spec["features"]),)
    assert flat.observation_space.dtype == np.float32
    assert hier.env_spec["nvec"][0] == flat.action_space.n
    assert isinstance(SplitwiseEnv(kind="cartpole").action_space, gym.spaces.Discrete)


def test_the_service_age_option_appends_one_feature_and_changes_nothing_else():
    """`service_age=True` (a training config's `[env.overrides] service_age`) appends the linear
    service age after the history window; the other entries are those of the default layout."""
    plain = SplitwiseEnv("subway-commute-phone", mode="layer-split")
    aged = SplitwiseEnv("subway-commute-phone", mode="layer-split", service_age=True)
    n = plain.observation_space.shape[0]
    assert aged.observation_space.shape == (n + 1,)
    assert aged.env_spec["features"][-1]["name"] == "service_age"
    (a, _), (b, _) = plain.reset(seed=5), aged.reset(seed=5)
    for _ in range(60):
        np.testing.assert_array_equal(a, b[:n])
        assert 0.0 <= b[n] <= 4.0
        a, ra, *_ = plain.step(0)
        b, rb, *_ = aged.step(0)
        assert ra == rb
    check_env(aged, skip_render_check=True)


def test_the_partition_options_are_the_rust_sides_list_and_the_readme_names_each():
    """The keyword options come from one list (the Rust `ScenarioOverrides::FIELDS`): an unknown
    one is refused naming every allowed one, and python/README.md documents each."""
    import os

    import splitwise_gym

    names = list(splitwise_gym.PARTITION_OPTIONS)
    assert names == ["mode", "infeasible", "episode_slots", "window_layers", "head_step", "service_age"]
    with pytest.raises(splitwise_gym.ConfigError) as e:
        SplitwiseEnv("subway-commute-phone", mode="layer-split", service_agee=True)
    # Each named with what it takes (serde's own message names them, not what they take).
    assert "service_agee" in str(e.value), str(e.value)
    assert all(f"{n}: {takes}" in str(e.value) for n, takes in splitwise_gym.PARTITION_OPTIONS.items()), str(e.value)
    readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")).read()
    assert [n for n in names if f"`{n}`" not in readme] == []


def test_masks_and_info_are_given_every_way_libraries_read_them():
    env = SplitwiseEnv("jetson-llama7b-lte", mode="hierarchical")
    obs, info = env.reset(seed=3)
    mask = env.action_masks()
    assert mask.dtype == np.bool_ and mask.shape == (int(np.sum(env.env_spec["nvec"])),)
    np.testing.assert_array_equal(mask, info["action_mask"])
    # Each component's block allows at least one value.
    offset = 0
    for n in env.env_spec["nvec"]:
        assert mask[offset : offset + n].any()
        offset += n
    # A legal plan: each component masked given the earlier ones (memory couples the layers).
    legal = []
    offset = 0
    for k, n in enumerate(env.env_spec["nvec"]):
        block = env.conditional_mask(legal) if k > 0 else None
        if block is None:
            block = mask[offset : offset + n]
        legal.append(int(np.flatnonzero(block)[0]))
        offset += n
    obs2, reward, terminated, truncated, info = env.step(np.array(legal))
    for key in ["latency_sum_s", "energy_j", "backlog", "drift", "penalty", "drift_plus_penalty", "reward", "repaired"]:
        assert key in info and isinstance(info[key], float), key
    assert info["reward"] == reward
    assert info["repaired"] == 0.0
    assert not terminated and not truncated


def test_arrays_are_fresh_on_every_call():
    env = SplitwiseEnv(kind="cartpole")
    a, _ = env.reset(seed=0)
    keep = a.copy()
    b, *_ = env.step(0)
    assert a is not b
    np.testing.assert_array_equal(a, keep)
    m1, m2 = env.action_masks(), env.action_masks()
    m1[:] = False
    assert m2.any()


def test_an_unseeded_first_reset_is_drawn_then_the_stream_continues():
    env = SplitwiseEnv(kind="als")
    env.reset(seed=5)
    a = [env.reset()[0] for _ in range(3)]
    env.reset(seed=5)
    b = [env.reset()[0] for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_infeasible_plans_are_repaired_by_default_and_refused_on_request():
    env = SplitwiseEnv("pi5-gpt2xl-wifi", mode="layer-split")
    strict = SplitwiseEnv("pi5-gpt2xl-wifi", mode="layer-split", infeasible="error")
    env.reset(seed=0)
    strict.reset(seed=0)
    masked = np.flatnonzero(~env.action_masks())
    if masked.size == 0:
        pytest.skip("every split fits in this state")
    *_, info = env.step(int(masked[-1]))
    assert info["repaired"] == 1.0
    with pytest.raises(splitwise_gym.ActionError, match="masked out"):
        strict.step(int(masked[-1]))
