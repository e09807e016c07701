"""A Python policy evaluated by splitwise's own evaluator, beside the baselines."""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

from . import _native
from ._common import native_args

#: The baselines every evaluation compares against unless told otherwise (the end-of-training
#: comparison's); ``best-fixed`` (the best static plan) and ``clairvoyant`` (the bound) are added
#: unless ``no_headroom``.
DEFAULT_BASELINES = "cloud-only,edge-only,static-best,neurosurgeon,failover,dpp-one-slot"

Policy = Callable[[Any, Any], Any]


def evaluate(
    scenario: str | os.PathLike,
    policies: Mapping[str, Policy],
    *,
    baselines: str = DEFAULT_BASELINES,
    episodes: int = 10,
    seed: int = 0,
    slots: int | None = None,
    no_headroom: bool = False,
    out: str | os.PathLike | None = None,
    **options: Any,
) -> dict:
    """Evaluates each ``policies[label]`` (a callable ``(obs, mask) -> action``: an int, or one
    int per component; an optional ``.reset(seed)`` is called at each episode start) on
    ``episodes`` seeded episodes of ``scenario`` beside ``baselines`` (``splitwise eval``'s spec
    list) and the headroom rows, with common random numbers: every policy sees the same arrivals,
    channel and cloud load. ``options`` are the scenario overrides (``mode="layer-split"``, …).

    Returns ``metrics.json`` of ``splitwise eval`` as a dict (per row: metrics with 95 %
    intervals, ratios, ``headroom`` with each row's capture); with ``out``, also writes the whole
    report folder (``report.md``, plots, CSVs) there, atomically. Episode seeds derive from
    ``seed`` exactly as in ``splitwise eval --seed``, so the baselines' rows match the CLI's.
    """
    _, name, opts = native_args(scenario, "partition", options)
    labels = list(policies)
    command = (
        f"splitwise_gym.evaluate({name!r}, policies={labels!r}, baselines={baselines!r}, "
        f"episodes={episodes}, seed={seed}, slots={slots}, no_headroom={no_headroom}"
        + "".join(f", {k}={v!r}" for k, v in options.items())
        + ")"
    )
    text = _native.evaluate(
        name,
        [(label, policies[label]) for label in labels],
        baselines,
        int(episodes),
        int(seed),
        overrides=opts,
        slots=slots,
        no_headroom=no_headroom,
        out=None if out is None else os.fspath(out),
        command=command,
    )
    return json.loads(text)


def capture(metrics: dict, label: str, metric: str = "drift_plus_penalty") -> dict | None:
    """The headroom capture of row ``label`` (``mean`` and 95 % interval) on the first scenario of
    an :func:`evaluate` result, or ``None`` when the evaluation has no headroom section."""
    scenario = metrics["scenarios"][0]
    headroom = scenario.get("headroom")
    if not headroom:
        return None
    for row in headroom["rows"]:
        if row["label"] == label:
            for c in row["captures"]:
                if c["metric"] == metric:
                    return c
    raise KeyError(f"no row {label!r} in the headroom section; rows: {[r['label'] for r in headroom['rows']]}")
