"""The native vector env: Gymnasium's VectorEnv contract, same-step autoreset, one seed."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import splitwise_gym
from splitwise_gym import SplitwiseEnv, SplitwiseVectorEnv


def test_make_vec_through_the_vector_entry_point():
    venv = gym.make_vec(
        "splitwise/jetson-llama7b-lte-v1", num_envs=4, vectorization_mode="vector_entry_point", mode="layer-split"
    )
    assert isinstance(venv.unwrapped, SplitwiseVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    obs, info = venv.reset(seed=11)
    assert obs.shape == (4, venv.single_observation_space.shape[0]) and obs.dtype == np.float32
    assert obs in venv.observation_space
    assert info["action_mask"].shape == (4, venv.single_action_space.n)
    actions = venv.action_space.sample()
    obs, rewards, terminated, truncated, info = venv.step(actions)
    assert rewards.shape == (4,) and terminated.dtype == np.bool_ and truncated.shape == (4,)
    assert info["drift_plus_penalty"].shape == (4,) and info["_drift_plus_penalty"].all()
    np.testing.assert_array_equal(info["reward"], rewards)


def test_members_match_single_envs_seeded_with_derive_seed_and_reset_in_the_same_step():
    # ALS's episodes last 5 steps: every member finishes at step 5 and starts its next episode.
    n, seed = 3, 42
    venv = SplitwiseVectorEnv(kind="als", num_envs=n)
    singles = [SplitwiseEnv(kind="als") for _ in range(n)]
    obs, _ = venv.reset(seed=seed)
    firsts = [s.reset(seed=splitwise_gym.derive_seed(seed, i))[0] for i, s in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack(firsts))
    for t in range(12):
        actions = np.array([(t * 3 + i) % 10 for i in range(n)])
        obs, rewards, terminated, truncated, info = venv.step(actions)
        for i, s in enumerate(singles):
            o, r, te, tr, si = s.step(int(actions[i]))
            assert rewards[i] == r and terminated[i] == te and truncated[i] == tr
            assert info["quality"][i] == si["quality"]
            if te or tr:
                assert info["_final_obs"][i]
                np.testing.assert_array_equal(info["final_obs"][i], o)
                assert info["final_info"]["quality"][i] == si["quality"]
                o, _ = s.reset()
            np.testing.assert_array_equal(obs[i], o)
        assert ("final_obs" in info) == bool((terminated | truncated).any())


def test_vector_state_round_trips():
    venv = SplitwiseVectorEnv("subway-commute-phone", num_envs=2, mode="layer-split")
    venv.reset(seed=1)
    rng = np.random.default_rng(0)
    acts = [rng.integers(0, venv.single_action_space.n, size=2) for _ in range(20)]
    for a in acts[:10]:
        venv.step(a)
    state = venv.get_state()
    first = [venv.step(a) for a in acts[10:]]
    venv.set_state(state)
    again = [venv.step(a) for a in acts[10:]]
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])


def test_copy_false_reuses_its_arrays_and_gives_the_same_values():
    fresh = SplitwiseVectorEnv("jetson-llama7b-lte", num_envs=3, mode="layer-split")
    reused = SplitwiseVectorEnv("jetson-llama7b-lte", num_envs=3, mode="layer-split", copy=False)
    o1, _ = fresh.reset(seed=4)
    o2, _ = reused.reset(seed=4)
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(2)
    previous = None
    for _ in range(20):
        a = rng.integers(0, 33, size=3)
        s1 = fresh.step(a)
        s2 = reused.step(a)
        for x, y in zip(s1[:4], s2[:4]):
            np.testing.assert_array_equal(x, y)
        for key in ["drift_plus_penalty", "backlog", "action_mask"]:
            np.testing.assert_array_equal(s1[4][key], s2[4][key])
        if previous is not None:
            assert s2[0] is previous[0] and s2[4]["reward"].base is previous[4]["reward"].base
            assert s1[0] is not previous_fresh[0]
        previous, previous_fresh = s2, s1


def test_set_state_returns_the_restored_observations():
    venv = SplitwiseVectorEnv(kind="cartpole", num_envs=2)
    obs, _ = venv.reset(seed=0)
    state = venv.get_state()
    venv.step(np.array([1, 1]))
    restored = venv.set_state(state)
    np.testing.assert_array_equal(restored, obs)
    np.testing.assert_array_equal(venv.action_masks(), np.ones((2, 2), dtype=bool))


def test_next_step_autoreset_is_what_gymnasium_and_rllib_expect():
    from gymnasium.vector import AutoresetMode

    same = SplitwiseVectorEnv(kind="als", num_envs=2)
    nxt = SplitwiseVectorEnv(kind="als", num_envs=2, autoreset_mode=AutoresetMode.NEXT_STEP)
    assert nxt.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert same.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    same.reset(seed=8)
    nxt.reset(seed=8)
    a = np.array([4, 6])
    for _ in range(4):
        s, n = same.step(a), nxt.step(a)
        np.testing.assert_array_equal(s[0], n[0])
    s_obs, s_rew, s_term, s_trunc, s_info = same.step(a)  # ALS episodes last 5 steps
    n_obs, n_rew, n_term, n_trunc, n_info = nxt.step(a)
    assert (s_term | s_trunc).all() and (n_term | n_trunc).all()
    np.testing.assert_array_equal(n_obs, np.stack(s_info["final_obs"]))  # the final observation
    assert "final_obs" not in n_info
    n_obs, n_rew, n_term, n_trunc, _ = nxt.step(np.array([0, 0]))  # resets, action ignored
    np.testing.assert_array_equal(n_obs, s_obs)
    assert (n_rew == 0).all() and not n_term.any() and not n_trunc.any()


def test_the_vector_dict_observation_follows_rllibs_convention():
    from gymnasium.vector import AutoresetMode

    from splitwise_gym import VectorActionMaskObservation

    venv = VectorActionMaskObservation(
        SplitwiseVectorEnv("pi5-gpt2xl-wifi", num_envs=3, mode="layer-split", autoreset_mode=AutoresetMode.NEXT_STEP)
    )
    obs, _ = venv.reset(seed=0)
    assert obs in venv.observation_space
    assert obs["observations"].shape == (3, venv.single_observation_space["observations"].shape[0])
    np.testing.assert_array_equal(obs["action_mask"] > 0.5, venv.unwrapped.action_masks())
    obs, *_ = venv.step(venv.unwrapped.action_masks().argmax(axis=1))
    assert obs["action_mask"].dtype == np.float32 and obs in venv.observation_space


@pytest.mark.parametrize("copy", [True, False])
def test_every_info_column_and_strided_actions_match_the_single_envs(copy):
    # The native step writes the info columns (names × members) straight from each member's step
    # info and reads actions from any memory layout: check both against single envs stepped by hand,
    # with fresh arrays and with the reused buffers of copy=False.
    n, seed = 3, 9
    venv = SplitwiseVectorEnv("jetson-llama7b-lte", num_envs=n, mode="hierarchical", infeasible="repair", copy=copy)
    singles = [SplitwiseEnv("jetson-llama7b-lte", mode="hierarchical", infeasible="repair") for _ in range(n)]
    venv.reset(seed=seed)
    for i, s in enumerate(singles):
        s.reset(seed=splitwise_gym.derive_seed(seed, i))
    rng = np.random.default_rng(5)
    nvec = venv.single_action_space.nvec
    for t in range(15):
        contiguous = (rng.random((n, len(nvec))) * nvec).astype(np.int64)
        # Fortran order on even steps, a strided view of a wider array on odd ones.
        if t % 2 == 0:
            actions = np.asfortranarray(contiguous)
        else:
            wide = np.zeros((n, 2 * len(nvec)), dtype=np.int64)
            wide[:, ::2] = contiguous
            actions = wide[:, ::2]
        assert not actions.flags.c_contiguous
        obs, rewards, _, _, info = venv.step(actions)
        for i, s in enumerate(singles):
            # The single env too, from a strided view (every other value of a wider row).
            row = np.zeros(2 * len(nvec), dtype=np.int64)
            row[::2] = contiguous[i]
            o, r, _, _, si = s.step(row[::2])
            np.testing.assert_array_equal(obs[i], o)
            assert rewards[i] == r
            for name in venv._info_names:
                assert info[name][i] == si[name], (t, i, name)


def test_a_view_of_the_envs_own_buffer_is_accepted_as_actions():
    # copy=False returns the env's own buffers. A view of one of them passed back as the actions
    # (here the info buffer's "dropped" row reinterpreted as int64: 0.0 is the bit pattern of 0,
    # split 0) must be read before the step rewrites that buffer: same results as a copy.
    n = 3
    a = SplitwiseVectorEnv("jetson-llama7b-lte", num_envs=n, mode="layer-split", copy=False)
    b = SplitwiseVectorEnv("jetson-llama7b-lte", num_envs=n, mode="layer-split")
    a.reset(seed=3)
    b.reset(seed=3)
    _, _, _, _, info = a.step(np.zeros((n, 1), dtype=np.int64))
    b.step(np.zeros((n, 1), dtype=np.int64))
    for _ in range(10):
        view = info["dropped"].view(np.int64).reshape(n, 1)
        assert np.shares_memory(view, info["dropped"]) and view.flags.c_contiguous
        if view.any():
            break  # a request was dropped: its bits are not a valid split
        _, ra, _, _, info = a.step(view)
        _, rb, _, _, _ = b.step(np.zeros((n, 1), dtype=np.int64))
        np.testing.assert_array_equal(ra, rb)
