#!/usr/bin/env python3
"""Checks policies written by `splitwise export` with the ONNX reference tooling (not run in CI).

For every graph named in the sidecar(s) given on the command line:
  1. `onnx.checker.check_model(full_check=True)` (schema and shape inference);
  2. the declared inputs/outputs match the sidecar (names, dtypes, the dynamic `batch` axis);
  3. onnxruntime runs it on 1,000 random observations inside the features' bounds and random masks
     with at least one legal value per component, at batch 1 and in batches, and the outputs are
     compared with an independent NumPy evaluation of what the sidecar says the graph computes,
     using the weights embedded in the file: clip((x - mean) / std, +-clip) -> tanh MLP -> masked
     logits (masked = -1e8) -> per-component softmax / argmax. Legal logits and probabilities
     within 1e-5, masked entries exactly masked, actions identical (differences only at ties of
     the reference logits within 1e-6, counted).

Usage: python scripts/check_onnx.py out/policy.onnx.json [more sidecars...]
(a path to the .onnx file works too: its sidecar is `<file>.json`).
Setup: python -m venv /tmp/onnx-venv && /tmp/onnx-venv/bin/pip install onnx onnxruntime numpy
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

N_OBS = 1000
N_SINGLE = 100
BATCH = 300
TOLERANCE = 1e-5


def initializers(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def reference(weights, sidecar, level, obs, mask):
    """What the sidecar says the graph computes, in float64 from the file's float32 weights."""
    x = obs.astype(np.float64)
    if sidecar["observation"]["normalization"]["in_graph"]:
        mean = weights["normalization.mean"].astype(np.float64)
        std = weights["normalization.std"].astype(np.float64)
        clip = float(sidecar["observation"]["normalization"]["clip"])
        x = np.clip((x - mean) / std, -clip, clip)
    hidden = sorted(
        {k.rsplit(".", 1)[0] for k in weights if k.startswith("actor.net.hidden.")},
        key=lambda k: int(k.rsplit(".", 1)[1]),
    )
    for layer in hidden:
        x = np.tanh(x @ weights[layer + ".weight"].astype(np.float64) + weights[layer + ".bias"])
    logits = x @ weights["actor.net.head.weight"].astype(np.float64) + weights["actor.net.head.bias"]
    masked_logit = float(sidecar["action"]["mask"]["masked_logit"]) if mask is not None else None
    if mask is not None:
        logits = np.where(mask == 1.0, logits, masked_logit)
    comps = [sidecar["action"]["components"][c] for c in level["components"]]
    probs = np.zeros_like(logits)
    actions = np.zeros((logits.shape[0], len(comps)), dtype=np.int64)
    offset = 0
    for i, c in enumerate(comps):
        block = logits[:, offset : offset + c["n_values"]]
        e = np.exp(block - block.max(axis=1, keepdims=True))
        probs[:, offset : offset + c["n_values"]] = e / e.sum(axis=1, keepdims=True)
        actions[:, i] = block.argmax(axis=1)  # first index on ties, as the graph
        offset += c["n_values"]
    return logits, probs, actions


def random_inputs(sidecar, level, rng, masked):
    feats = sidecar["observation"]["features"]
    low = np.array([f["low"] for f in feats], dtype=np.float32)
    high = np.array([f["high"] for f in feats], dtype=np.float32)
    obs = (low + (high - low) * rng.random((N_OBS, len(feats)))).astype(np.float32)
    if not masked:
        return obs, None
    comps = [sidecar["action"]["components"][c] for c in level["components"]]
    width = sum(c["n_values"] for c in comps)
    mask = (rng.random((N_OBS, width)) < 0.5).astype(np.float32)
    offset = 0
    for c in comps:
        pick = rng.integers(0, c["n_values"], N_OBS)
        mask[np.arange(N_OBS), offset + pick] = 1.0
        offset += c["n_values"]
    return obs, mask


def check_level(sidecar, level, directory, rng):
    path = os.path.join(directory, level["file"])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    declared = [(i.name, i.type.tensor_type.shape.dim[0].dim_param) for i in model.graph.input]
    expected = [(i["name"], "batch") for i in level["inputs"]]
    assert declared == expected, f"{path}: inputs {declared}, sidecar says {expected}"
    assert [o.name for o in model.graph.output] == [o["name"] for o in level["outputs"]]
    assert level["conditioned_on"] == [], "chained levels: check each level on its own"
    weights = initializers(model)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [i["name"] for i in level["inputs"]]
    masked = "action_mask" in names
    obs, mask = random_inputs(sidecar, level, rng, masked)
    fmt = sidecar["format"]
    worst, ties, start = 0.0, 0, 0
    while start < N_OBS:
        batch = 1 if start < N_SINGLE else min(BATCH, N_OBS - start)
        rows = slice(start, start + batch)
        feed = {"observation": obs[rows]}
        if masked:
            feed["action_mask"] = mask[rows]
        (got,) = session.run(None, feed)
        logits, probs, actions = reference(weights, sidecar, level, obs[rows], mask[rows] if masked else None)
        if fmt == "action":
            differ = got != actions
            if differ.any():
                offsets = np.cumsum([0] + [sidecar["action"]["components"][c]["n_values"] for c in level["components"]])
                for r, c in zip(*np.nonzero(differ)):
                    a, b = offsets[c] + got[r, c], offsets[c] + actions[r, c]
                    gap = abs(logits[r, a] - logits[r, b])
                    assert gap <= 1e-6, f"row {start + r} component {c}: {got[r, c]} vs {actions[r, c]} (gap {gap})"
                    ties += 1
        else:
            want = logits if fmt == "logits" else probs
            legal = np.ones_like(want, dtype=bool) if not masked else mask[rows] == 1.0
            diff = np.abs(got - want)[legal]
            worst = max(worst, float(diff.max(initial=0.0)))
            assert worst <= TOLERANCE, f"{path}: max |onnxruntime - numpy| = {worst}"
            if masked:
                masked_value = sidecar["action"]["mask"]["masked_logit"] if fmt == "logits" else 0.0
                assert np.all(got[~legal] == np.float32(masked_value)), f"{path}: masked entries not exactly masked"
        start += batch
    print(
        f"{path}: onnx.checker ok, opset {model.opset_import[0].version}, {os.path.getsize(path)} bytes, "
        f"{N_OBS} observations: {fmt} max |onnxruntime - numpy| = {worst:.2e}, action ties {ties}"
    )


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    rng = np.random.default_rng(0)
    print(f"onnx {onnx.__version__}, onnxruntime {ort.__version__}, numpy {np.__version__}")
    for arg in argv[1:]:
        sidecar_path = arg if arg.endswith(".json") else arg + ".json"
        with open(sidecar_path) as f:
            sidecar = json.load(f)
        for level in sidecar["levels"]:
            check_level(sidecar, level, os.path.dirname(os.path.abspath(sidecar_path)), rng)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
