"""What the single and the vector env share: options → the native module's arguments, and the
spec dict → Gymnasium spaces."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from gymnasium import spaces

from . import _native

#: The keyword options of a partition scenario, name → what it takes: a training config's
#: ``[env.overrides]`` fields (the Rust side's list).
PARTITION_OPTIONS = dict(_native.PARTITION_OPTIONS)


def native_args(scenario: str | None, kind: str, options: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """``(kind, scenario, options JSON)``; a path-like scenario becomes a string. Unknown option
    names are rejected by the Rust side with the allowed names.

    A partition scenario defaults to ``infeasible="repair"`` here (the scenario files say
    ``"error"``): Gymnasium's contract is that every action of ``action_space`` can be stepped
    (``check_env`` and unmasked learners sample it), so an infeasible plan is repaired
    deterministically and flagged in ``info["repaired"]``. Pass ``infeasible="error"`` to get the
    scenario file's behaviour (masked learners never need the repair)."""
    if scenario is not None:
        scenario = os.fspath(scenario)
    if kind == "partition":
        options = {"infeasible": "repair", **options}
    return kind, scenario, (json.dumps(options) if options else None)


def observation_space(spec: dict) -> spaces.Box:
    low = np.array([f["low"] for f in spec["features"]], dtype=np.float32)
    high = np.array([f["high"] for f in spec["features"]], dtype=np.float32)
    return spaces.Box(low=low, high=high, dtype=np.float32)


def action_space(spec: dict) -> spaces.Space:
    """``Discrete`` for a one-component space (layer-split, CartPole, ALS), ``MultiDiscrete``
    for the hierarchical action (split, precision, window heads, FFN modes)."""
    nvec = spec["nvec"]
    if len(nvec) == 1:
        return spaces.Discrete(int(nvec[0]))
    return spaces.MultiDiscrete(np.array(nvec, dtype=np.int64))
