"""The single environment: :class:`SplitwiseEnv`, a ``gymnasium.Env`` over the Rust simulator."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from . import _native
from ._common import action_space, native_args, observation_space


class SplitwiseEnv(gym.Env):
    """A splitwise environment: a partition scenario (``kind="partition"``, the default; a TOML
    path or a shipped name from :data:`splitwise_gym.SCENARIOS`), ``"cartpole"`` or ``"als"``.

    Keyword options are the scenario overrides of a training config's ``[env.overrides]``
    (``mode="layer-split"``, ``episode_slots=500``, …) or, for ``"als"``, ALS's parameters.

    - ``reset(seed=s)`` gives the same episode as the Rust env's ``reset(Some(s))``; the first
      ``reset()`` without a seed draws one from ``self.np_random`` (Gymnasium's convention), later
      ones continue the env's own episode stream.
    - ``terminated``/``truncated`` are the simulator's (the time limit is its ``episode_slots``).
    - The action mask of the current state: :meth:`action_masks` (sb3-contrib's MaskablePPO),
      ``info["action_mask"]``; one boolean per value of every component, concatenated.
    - ``info`` holds the step's typed info as floats (latency, energy, backlog, every reward term:
      the names of ``env/…`` in TensorBoard).
    - Arrays are fresh copies on every call.
    """

    metadata = {"render_modes": []}

    def __init__(self, scenario: str | None = None, *, kind: str = "partition", render_mode: str | None = None, **options: Any):
        if render_mode is not None:
            raise ValueError(f"render_mode={render_mode!r}: splitwise environments do not render")
        self._native = _native.NativeEnv(*native_args(scenario, kind, options))
        self.env_spec = self._native.spec()
        self.observation_space = observation_space(self.env_spec)
        self.action_space = action_space(self.env_spec)
        self._components = len(self.env_spec["nvec"])
        self._mask: np.ndarray | None = None
        self._seeded = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options:
            raise ValueError(f"reset options are not used by splitwise environments, got {sorted(options)}")
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(2**63))
        if seed is not None:
            self._seeded = True
        obs, mask, info = self._native.reset(seed)
        self._mask = mask
        info["action_mask"] = mask.copy()
        return obs, info

    def step(self, action):
        values = np.asarray(action, dtype=np.int64).reshape(-1)
        obs, mask, reward, terminated, truncated, info = self._native.step(values)
        self._mask = mask
        info["action_mask"] = mask.copy()
        return obs, float(reward), bool(terminated), bool(truncated), info

    def action_masks(self) -> np.ndarray:
        """The current state's mask (sb3-contrib's ``MaskablePPO`` calls this)."""
        if self._mask is None:
            raise _native.ResetNeeded("action_masks() before reset()")
        return self._mask.copy()

    def conditional_mask(self, prefix) -> np.ndarray | None:
        """The mask of component ``len(prefix)`` given earlier components' values (memory couples
        a hierarchical plan's layers), or ``None`` where masks do not depend on earlier choices."""
        return self._native.conditional_mask([int(v) for v in prefix])

    def get_state(self) -> dict:
        """Everything needed to continue the episode exactly (picklable)."""
        if self._mask is None:
            raise _native.ResetNeeded("get_state() before reset()")
        return {"id": self.env_spec["id"], "native": self._native.get_state(), "mask": self._mask.tolist()}

    def set_state(self, state: dict) -> None:
        """Restores a :meth:`get_state` of an environment of the same kind and scenario."""
        if not isinstance(state, dict) or state.get("id") != self.env_spec["id"] or "native" not in state:
            raise _native.StateError(f"not a saved state of {self.env_spec['id']}")
        self._native.set_state(state["native"])
        self._mask = np.array(state["mask"], dtype=np.bool_)
        self._seeded = True
