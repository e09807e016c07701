"""Wrappers for libraries that read action masks from the observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


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
