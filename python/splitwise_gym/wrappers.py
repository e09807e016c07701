"""Wrappers for libraries that read action masks from the observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorObservationWrapper
from gymnasium.vector.utils import batch_space


class ActionMaskObservation(gym.ObservationWrapper):
    """``{"observations": obs, "action_mask": mask}``: RLlib's action-masking convention (its
    ``ActionMaskingTorchRLModule`` example reads these two keys). The mask is a float32 Box in
    [0, 1] (1 = allowed), one entry per value of every component."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        n = int(np.sum(env.unwrapped.env_spec["nvec"]))
        self.observation_space = spaces.Dict(
            {
                "observations": env.observation_space,
                "action_mask": spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32),
            }
        )

    def observation(self, observation):
        mask = self.env.unwrapped.action_masks().astype(np.float32)
        return {"observations": observation, "action_mask": mask}


class VectorActionMaskObservation(VectorObservationWrapper):
    """:class:`ActionMaskObservation` for a :class:`~splitwise_gym.SplitwiseVectorEnv`: batched
    ``{"observations": (n, d), "action_mask": (n, mask length)}`` (RLlib's convention, for its
    ``gym_env_vectorize_mode="vector_entry_point"``). With same-step autoreset, ``final_obs`` in
    the info stays the flat observation; use ``autoreset_mode=NEXT_STEP`` (what RLlib expects)."""

    def __init__(self, env):
        super().__init__(env)
        n = int(np.sum(env.unwrapped.env_spec["nvec"]))
        self.single_observation_space = spaces.Dict(
            {
                "observations": env.single_observation_space,
                "action_mask": spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32),
            }
        )
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)

    def observations(self, observations):
        return {"observations": observations, "action_mask": self.env.unwrapped.action_masks().astype(np.float32)}
