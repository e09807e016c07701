"""splitwise-gym: the splitwise environments (LLM partitioning between an edge device and the
cloud, CartPole, ALS's environment) as Gymnasium environments, with a native vector env and
splitwise's evaluator for Python policies.

    import gymnasium as gym
    import splitwise_gym

    env = gym.make("splitwise/jetson-llama7b-lte-v1", mode="layer-split")
    venv = gym.make_vec("splitwise/jetson-llama7b-lte-v1", num_envs=8,
                        vectorization_mode="vector_entry_point", mode="layer-split")

Registered ids: ``splitwise/Partition-v1`` (pass ``scenario=`` a TOML path or a shipped name),
``splitwise/<shipped scenario>-v1`` for each name in :data:`SCENARIOS`,
``splitwise/CartPole-v1`` and ``splitwise/ALS-v1``.
"""

from __future__ import annotations

import gymnasium as gym

from . import _native
from ._native import (
    BASELINES,
    KINDS,
    NOTICES,
    SCENARIOS,
    ActionError,
    ConfigError,
    ResetNeeded,
    SplitwiseError,
    StateError,
    derive_seed,
)
from ._common import PARTITION_OPTIONS
from .env import SplitwiseEnv
from .evaluate import DEFAULT_BASELINES, capture, evaluate
from .vector import SplitwiseVectorEnv
from .wrappers import ActionMaskObservation, VectorActionMaskObservation

__version__ = _native.VERSION

__all__ = [
    "BASELINES",
    "DEFAULT_BASELINES",
    "KINDS",
    "NOTICES",
    "PARTITION_OPTIONS",
    "SCENARIOS",
    "ActionError",
    "ActionMaskObservation",
    "ConfigError",
    "ResetNeeded",
    "SplitwiseEnv",
    "SplitwiseError",
    "SplitwiseVectorEnv",
    "StateError",
    "VectorActionMaskObservation",
    "capture",
    "derive_seed",
    "evaluate",
    "registered_ids",
]

_ENTRY = "splitwise_gym.env:SplitwiseEnv"
_VECTOR_ENTRY = "splitwise_gym.vector:SplitwiseVectorEnv"


def _ids() -> dict[str, dict]:
    ids = {
        "splitwise/Partition-v1": {},
        "splitwise/CartPole-v1": {"kind": "cartpole"},
        "splitwise/ALS-v1": {"kind": "als"},
    }
    for name in SCENARIOS:
        ids[f"splitwise/{name}-v1"] = {"scenario": name}
    return ids


def registered_ids() -> list[str]:
    """Every Gymnasium id this package registers."""
    return list(_ids())


def _register() -> None:
    for env_id, kwargs in _ids().items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=_ENTRY, vector_entry_point=_VECTOR_ENTRY, kwargs=kwargs)


_register()
