"""get_state/set_state continue an episode exactly, also through pickle."""

import pickle

import numpy as np

from splitwise_gym import SplitwiseEnv


def test_save_and_restore_mid_episode_continue_identically():
    env = SplitwiseEnv("subway-commute-phone", mode="hierarchical")
    env.reset(seed=9)
    rng = np.random.default_rng(1)
    actions = [env.action_space.sample() for _ in range(30)]
    for a in actions[:15]:
        env.step(a)
    state = pickle.loads(pickle.dumps(env.get_state()))
    first = [env.step(a) for a in actions[15:]]
    other = SplitwiseEnv("subway-commute-phone", mode="hierarchical")
    other.reset(seed=123)
    other.set_state(state)
    np.testing.assert_array_equal(other.action_masks(), np.array(state["mask"]))
    again = [other.step(a) for a in actions[15:]]
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(first, again):
        np.testing.assert_array_equal(o1, o2)
        assert (r1, te1, tr1) == (r2, te2, tr2)
        assert i1["drift_plus_penalty"] == i2["drift_plus_penalty"]
    del rng
