"""The native vector environment: :class:`SplitwiseVectorEnv`, a ``gymnasium.vector.VectorEnv``
whose members are stepped by one call into Rust."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _native
from ._common import action_space, native_args, observation_space


class SplitwiseVectorEnv(VectorEnv):
    """``num_envs`` members of one environment, stepped in Rust in one call per step.

    - ``reset(seed=s)`` seeds member ``i`` with ``derive_seed(s, i)`` (one seed drives the batch;
      member ``i`` then runs the episode a single env reset with that seed runs).
    - ``autoreset_mode=AutoresetMode.SAME_STEP`` (default; SB3's convention, and the Rust
      trainer's): a member whose episode ends returns the next episode's first observation, with
      ``info["final_obs"]``/``info["final_info"]`` (and their ``_`` masks) as Gymnasium's own
      vector envs give them. ``AutoresetMode.NEXT_STEP`` (Gymnasium's default, what RLlib
      expects): the ending step returns the final observation, and the member's next step resets
      it (its action ignored; reward 0). ``metadata["autoreset_mode"]`` says which.
    - ``info`` columns: every step-info scalar (one float per member) and ``action_mask``
      (members × mask length). A finished member's columns hold its final step's info (the reset
      carries no step), so sums over steps miss nothing; ``final_info`` repeats them.
    - :meth:`action_masks` returns the batch of current masks.
    - ``copy=True`` (default): fresh arrays every call. ``copy=False``: observations, masks,
      rewards, flags and info columns are written into the same arrays every step and returned
      without a copy (valid until the next call, as Gymnasium's ``SyncVectorEnv(copy=False)``):
      for loops that consume a step before taking the next, the cheapest path
      (BENCHMARKS.md, "Python bindings").
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        scenario: str | None = None,
        num_envs: int = 8,
        *,
        kind: str = "partition",
        copy: bool = True,
        autoreset_mode: AutoresetMode | str = AutoresetMode.SAME_STEP,
        **options: Any,
    ):
        mode = AutoresetMode(autoreset_mode)
        if mode not in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
            raise ValueError(f"autoreset_mode={mode}: SAME_STEP or NEXT_STEP")
        options.pop("max_episode_steps", None)  # gymnasium.make_vec passes the spec's; ours is the scenario's
        kind, scenario, opts = native_args(scenario, kind, options)
        self._native = _native.NativeVecEnv(
            kind, int(num_envs), scenario, opts, copy=bool(copy), next_step=mode == AutoresetMode.NEXT_STEP
        )
        self.copy = bool(copy)
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.env_spec = self._native.spec()
        self.num_envs = int(num_envs)
        self.single_observation_space = observation_space(self.env_spec)
        self.single_action_space = action_space(self.env_spec)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._components = len(self.env_spec["nvec"])
        self._action_shape = (self.num_envs, self._components)
        self._info_names = list(self._native.info_names)
        self._every = np.ones(self.num_envs, dtype=np.bool_)
        self._every.flags.writeable = False  # shared by every step's "_name" masks
        # Every info column is present for every member: one shared all-true "_name" mask.
        self._info_masks = dict.fromkeys([f"_{n}" for n in self._info_names] + ["_action_mask"], self._every)
        self._final_names = [f"_{n}" for n in self._info_names]
        self._masks: np.ndarray | None = None
        # copy=False: the info dict's columns are views of the one info buffer the native env
        # rewrites every step, made once (dict.copy() per step instead of one view per column).
        self._info_buffer: np.ndarray | None = None
        self._info_template: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            raise ValueError("seed must be one int (member i gets derive_seed(seed, i)) or None")
        if options:
            raise ValueError(f"reset options are not used by splitwise environments, got {sorted(options)}")
        super().reset(seed=seed)
        obs, masks = self._native.reset(seed)
        self._masks = masks
        return obs, {"action_mask": masks, "_action_mask": self._every}

    def step(self, actions):
        values = np.asarray(actions, dtype=np.int64)
        if values.shape != self._action_shape:
            values = values.reshape(self._action_shape)
        obs, masks, rewards, terminated, truncated, infos, final_obs, has_final = self._native.step(values)
        self._masks = masks
        # infos is names × members: row j is column `name j` of Gymnasium's info dict.
        if self.copy:
            info: dict[str, Any] = self._info_masks.copy()
            info.update(zip(self._info_names, infos))
        else:
            if infos is not self._info_buffer:
                self._info_buffer = infos
                self._info_template = self._info_masks.copy()
                self._info_template.update(zip(self._info_names, infos))
            info = self._info_template.copy()
        info["action_mask"] = masks
        if has_final is not None and self.autoreset_mode == AutoresetMode.SAME_STEP:
            finals = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(has_final):
                finals[i] = final_obs[i]
            final_info: dict[str, Any] = dict(zip(self._info_names, infos.copy()))
            final_info.update(dict.fromkeys(self._final_names, has_final))
            info["final_obs"], info["_final_obs"] = finals, has_final
            info["final_info"], info["_final_info"] = final_info, has_final
        return obs, rewards, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """The members' current masks (members × mask length)."""
        if self._masks is None:
            raise _native.ResetNeeded("action_masks() before reset()")
        return self._masks.copy()

    def get_state(self) -> dict:
        """Every member's state and the batch's current observations (picklable)."""
        return {"id": self.env_spec["id"], "num_envs": self.num_envs, "native": self._native.get_state()}

    def set_state(self, state: dict) -> np.ndarray:
        """Restores a :meth:`get_state`; returns the restored current observations."""
        if not isinstance(state, dict) or state.get("id") != self.env_spec["id"] or state.get("num_envs") != self.num_envs:
            raise _native.StateError(f"not a saved state of a {self.num_envs}-member {self.env_spec['id']} vector env")
        self._native.set_state(state["native"])
        obs, self._masks = self._native.observations()
        return obs

    def close_extras(self, **kwargs: Any) -> None:
        pass
