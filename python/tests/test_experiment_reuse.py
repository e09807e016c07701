"""scripts/experiment.py reuses a finished run or evaluation only for the same inputs: the run
config (parsed), the scenario file it names (parsed) and the bytes of the traces that names. A
changed scenario once reused stale runs silently (2026-12-04)."""

import functools
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from experiment import config_digests, inputs_digest  # noqa: E402

SCENARIO = """version = 1
name = "s"
[failures.gilbert_elliott]
mean_good_s = 29.0  # a comment
[workload.arrivals]
kind = "trace"
path = "traces/rate.csv"
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_the_digest_follows_the_scenario_and_its_traces_not_comments_or_places(tmp_path):
    write(str(tmp_path / "configs" / "s.toml"), SCENARIO)
    write(str(tmp_path / "configs" / "traces" / "rate.csv"), "t,rate\n0,1\n")
    run = str(tmp_path / "out" / "configs" / "ppo-s.toml")
    write(run, f'[env]\nscenario_file = "{tmp_path / "configs" / "s.toml"}"\n'
               f'[logging]\ncheckpoints_dir = "{tmp_path / "out"}"\n')
    first = inputs_digest(run)
    assert len(first) == 64

    # A comment in the scenario changes nothing; neither does where the run writes.
    write(str(tmp_path / "configs" / "s.toml"), SCENARIO.replace("# a comment", "# another"))
    assert inputs_digest(run) == first
    before = config_digests(run)[0]
    write(run, f'[env]\nscenario_file = "{tmp_path / "configs" / "s.toml"}"\n'
               f'[logging]\ncheckpoints_dir = "{tmp_path / "elsewhere"}"\n')
    assert config_digests(run)[0] == before and inputs_digest(run) == first

    # The physics or the trace's bytes change the inputs (the run config itself does not).
    write(str(tmp_path / "configs" / "s.toml"), SCENARIO + "sojourn_shape_good = 13.0\n")
    changed = inputs_digest(run)
    assert changed != first and config_digests(run)[0] == before
    write(str(tmp_path / "configs" / "traces" / "rate.csv"), "t,rate\n0,2\n")
    assert inputs_digest(run) not in (first, changed)


FAKE_BINARY = """#!/bin/sh
# {tag}: a stand-in for the splitwise binary: `eval ... --out DIR` writes DIR/metrics.json.
while [ $# -gt 0 ]; do
  if [ "$1" = "--out" ]; then mkdir -p "$2"; echo '{{"episodes": 3, "seed": 7919}}' > "$2/metrics.json"; fi
  shift
done
"""


def experiment_out(tmp_path):
    """An experiment OUT holding one run config of scenario `s` (with a trace): (OUT, config)."""
    write(str(tmp_path / "configs" / "s.toml"), SCENARIO)
    write(str(tmp_path / "configs" / "traces" / "rate.csv"), "t,rate\n0,1\n")
    out = str(tmp_path / "out")
    config = os.path.join(out, "configs", "ppo-s.toml")
    write(config, f'[env]\nscenario_file = "{tmp_path / "configs" / "s.toml"}"\n')
    os.makedirs(os.path.join(out, "logs"))
    return out, config


def test_runs_and_evaluations_of_another_build_are_reused_and_named(tmp_path):
    import experiment

    experiment.OTHER_BUILD["runs"].clear()
    experiment.OTHER_BUILD["evaluations"].clear()
    out, config = experiment_out(tmp_path)

    def build(tag):
        path = str(tmp_path / f"splitwise-{tag}")
        write(path, FAKE_BINARY.format(tag=tag))
        os.chmod(path, 0o755)
        return path

    first, second = build("first"), build("second")
    assert experiment.binary_digest(first) != experiment.binary_digest(second)

    # Made by the first build: recorded as such, and reused by it without a mention.
    assert experiment.train(first, out, config, "ppo", "s", 0)[2] is False
    assert experiment.run_eval(first, out, config, "ppo", "s", "cloud-only", 3)[1] is False
    assert experiment.train(first, out, config, "ppo", "s", 0)[2] is True
    assert experiment.run_eval(first, out, config, "ppo", "s", "cloud-only", 3)[1] is True
    assert experiment.OTHER_BUILD == {"runs": [], "evaluations": []}
    assert "made by the binary that wrote it" in experiment.other_build_line()

    # Another build reuses both (nothing is retrained) and the report names them.
    assert experiment.train(second, out, config, "ppo", "s", 0)[2] is True
    assert experiment.run_eval(second, out, config, "ppo", "s", "cloud-only", 3)[1] is True
    line = experiment.other_build_line()
    assert "training runs: `ppo-s-s0`" in line and "evaluations: `ppo-s`" in line, line
    # An evaluation read twice (the checkpoint selection, by both evaluations) is named once.
    assert experiment.run_eval(second, out, config, "ppo", "s", "cloud-only", 3)[1] is True
    assert experiment.OTHER_BUILD["evaluations"] == ["ppo-s"]
    experiment.OTHER_BUILD["runs"].clear()
    experiment.OTHER_BUILD["evaluations"].clear()


def test_an_evaluation_is_redone_when_its_checkpoints_change_at_the_same_path(tmp_path):
    # A run removed and trained again writes other weights under the same path: its old
    # evaluation must not be reused (until 2026-12-06 only the path was compared).
    import experiment

    out, config = experiment_out(tmp_path)
    binary = str(tmp_path / "splitwise")
    write(binary, FAKE_BINARY.format(tag="one"))
    os.chmod(binary, 0o755)
    run = tmp_path / "out" / "checkpoints" / "ppo-s-s0"
    write(str(run / "best" / "metadata.json"), '{"step": 10}')
    write(str(run / "best" / "model.mpk"), "weights one")
    write(str(run / "step_20" / "metadata.json"), '{"step": 20}')
    write(str(run / "step_20" / "model.mpk"), "weights two")
    policies = f"ppo-s0=ckpt:{run / 'best'},last=ckpt:{run},cloud-only"
    assert experiment.run_eval(binary, out, config, "ppo", "s", policies, 3)[1] is False
    assert experiment.run_eval(binary, out, config, "ppo", "s", policies, 3)[1] is True
    # The named checkpoint's weights change, then the run folder's newest step: both re-evaluate.
    write(str(run / "best" / "model.mpk"), "weights three")
    assert experiment.run_eval(binary, out, config, "ppo", "s", policies, 3)[1] is False
    assert experiment.run_eval(binary, out, config, "ppo", "s", policies, 3)[1] is True
    write(str(run / "step_30" / "metadata.json"), '{"step": 30}')
    assert experiment.run_eval(binary, out, config, "ppo", "s", policies, 3)[1] is False
    # Read as the Rust parser reads specs: spaces around the parts, a label only without `:`.
    best = experiment.checkpoints_digest(f"ckpt:{run / 'best'}")
    assert experiment.checkpoints_digest(f"cloud-only, ppo = ckpt : {run / 'best'} ") == best
    assert experiment.checkpoints_digest(f"ckpt:{run}=ckpt:{run / 'best'}") != best
    # A broken link in a checkpoint folder counts as missing instead of stopping the experiment.
    os.symlink(str(tmp_path / "gone"), str(run / "best" / "broken"))
    assert experiment.checkpoints_digest(f"ckpt:{run / 'best'}") not in (None, best)
    # Baselines alone carry no checkpoint digest (their records from before still match).
    assert experiment.checkpoints_digest("cloud-only,oracle-mpc:4") is None
    assert experiment.checkpoints_digest(f"x=ckpt:{tmp_path / 'none'}") != experiment.checkpoints_digest(
        f"x=ckpt:{tmp_path / 'other'}")
    experiment.OTHER_BUILD["runs"].clear()
    experiment.OTHER_BUILD["evaluations"].clear()


def test_the_report_counts_a_whole_agents_reused_runs_instead_of_listing_them():
    """A rerun that reuses every flat-PPO run of another build would list 33 names in RESULTS.md;
    more than three sharing their first word are counted, three or fewer are named."""
    import experiment

    names = [f"ppo-s{i}-s{j}" for i in range(4) for j in range(3)] + ["hppo-a-s0", "hppo-b-s1"]
    assert experiment.grouped(sorted(names)) == "`hppo-a-s0`, `hppo-b-s1`, `ppo-*` (12)"
    assert experiment.grouped(["mpc-a", "mpc-b", "mpc-c"]) == "`mpc-a`, `mpc-b`, `mpc-c`"


def test_the_report_names_each_agents_budget_when_they_differ(tmp_path):
    """The report once said "300_000 env steps" for every agent, read from flat PPO's config; with
    agent configs of their own budgets (PPO_CONFIG, HPPO_CONFIG under STEPS=0) it must say each."""
    import experiment

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    out = str(tmp_path / "out")

    def configs(steps):
        return {(a, "jetson-llama7b-lte"): experiment.run_config(root, out, a, "jetson-llama7b-lte", steps)
                for a in ("ppo", "hppo", "mbrl")}

    # MBRL's total_steps counts real steps, one per 16 policy steps (real_steps 32 per 2 model updates
    # of 256): a STEPS budget gives it as many policy steps as the others take env steps.
    same = experiment.budgets(configs(1310720))
    assert same == {"ppo": 1310720, "hppo": 1310720, "mbrl": 1310720}
    assert experiment.budget_text(same) == "1_310_720 env steps"
    # Each config's own budget (the shipped ones: 300_000 env steps, MBRL 18_688 real steps).
    own = experiment.budgets(configs(0))
    assert own == {"ppo": 300000, "hppo": 300000, "mbrl": 299008}
    assert experiment.budget_text(own) == "per run flat PPO 300_000, H-PPO 300_000, MBRL 299_008 policy steps"


def test_the_wide_evaluation_reports_each_seeds_capture_and_paired_signs(tmp_path):
    """Where 100 episodes decide little (the scenarios with headroom), the agents are evaluated again
    on more fresh episodes; the report's table gives each seed's Δ + V·p and capture with the eval's
    interval, and counts seeds better / within noise / worse than the best static plan and the
    best causal rule on the same episodes."""
    import json

    import experiment

    out = str(tmp_path / "out")
    # Three episodes; per-episode Δ + V·p chosen so the signs follow by hand. The 95 % half-width
    # is t·sd/√3 with t = 1.960 + (1.960³ + 1.960)/8 = 3.146 (2 degrees of freedom, the
    # Cornish-Fisher correction paired_sign uses). Against edge-only: ppo-s0 is 1 below on every
    # episode (sd 0: better); ppo-s1 differs by -0.5, -0.5, -2 (mean -1, sd 0.866, half-width
    # 1.57: within noise); ppo-s2 by 0.5, 2.5, 0 (within noise). Against the rule: ppo-s0 by -0.5,
    # -0.5, 1 (within); ppo-s1 equals it (within); ppo-s2 by 1, 3, 2 (mean 2, sd 1, half-width 1.82:
    # worse).
    per_episode = {
        "ppo-s0": [2.0, 3.0, 4.0], "ppo-s1": [2.5, 3.5, 3.0], "ppo-s2": [3.5, 6.5, 5.0],
        "edge-only": [3.0, 4.0, 5.0], "service-window": [2.5, 3.5, 3.0], "clairvoyant": [1.0, 1.0, 1.0],
    }

    def row(label, values):
        return {"label": label, "metrics": {"drift_plus_penalty": {"mean": sum(values) / len(values)}},
                "members": [{"episodes": [{"episode": i, "metrics": {"drift_plus_penalty": v}}
                                          for i, v in enumerate(values)]}]}

    def capture(label, m, lo, hi):
        return {"label": label, "captures": [{"metric": "latency_mean_s", "mean": 9, "lo": 9, "hi": 9},
                                             {"metric": "drift_plus_penalty", "mean": m, "lo": lo, "hi": hi}]}

    metrics = {"episodes": 3, "seed": experiment.WIDE_SEED, "scenarios": [{
        "headroom": {"best_static": "edge-only", "best_causal": "service-window", "clairvoyant": "clairvoyant",
                     "rows": [capture("ppo-s0", 1 / 3, 0.2, 0.4), capture("ppo-s1", 0.5, 0.4, 0.6),
                              capture("ppo-s2", -0.5, -0.7, -0.3), capture("service-window", 0.5, 0.4, 0.6)]},
        "rows": [row(k, v) for k, v in per_episode.items()]}]}
    write(os.path.join(out, "eval", "wide-ppo-subway-commute-phone", "metrics.json"), json.dumps(metrics))
    # The scenario's headroom is read from its held-out evaluation: (4 − 1)/4 ≥ 5 %. The Jetson has
    # none here (no evaluation), so it gets no row.
    write(os.path.join(out, "eval", "ppo-subway-commute-phone", "metrics.json"), json.dumps(metrics))

    saved = experiment.RUN_AGENTS
    experiment.RUN_AGENTS = ["ppo"]
    try:
        lines = experiment.wide_table(out, ["jetson-llama7b-lte", "subway-commute-phone"], [0, 1, 2], 3)
        # None asked, none reported.
        assert experiment.wide_table(out, ["subway-commute-phone"], [0, 1, 2], 0) == []
    finally:
        experiment.RUN_AGENTS = saved
    table = [x for x in lines if x.startswith("| `")]
    assert table == [
        "| `subway-commute-phone` | ppo | 3.000, 3.000, 5.000 | 0.33 [0.20, 0.40], 0.50 [0.40, 0.60], "
        "-0.50 [-0.70, -0.30] | 0.11 | `edge-only` 4.000 | `service-window` 3.000 (0.50 [0.40, 0.60]) | "
        "`clairvoyant` 1.000 | 1 / 2 / 0 | 0 / 2 / 1 |"], table
    assert f"3 episodes of seed {experiment.WIDE_SEED}" in lines[1]
    # No scenario with headroom, no table.
    assert experiment.wide_table(out, ["jetson-llama7b-lte"], [0, 1, 2], 3) == []


SELECT_BINARY = """#!/bin/sh
# A stand-in for the splitwise binary's `eval ... --out DIR`: writes DIR/metrics.json from $SELECT_METRICS.
while [ $# -gt 0 ]; do
  if [ "$1" = "--out" ]; then mkdir -p "$2"; printf '%s' "$SELECT_METRICS" > "$2/metrics.json"; fi
  shift
done
"""


def test_each_run_is_evaluated_at_the_better_of_best_and_its_last_checkpoint(tmp_path, monkeypatch):
    """`best/` is the best of ~26 noisy periodic evaluations, and a policy can fall back late in
    training (MBRL to cloud-only, measured): the experiment evaluates whichever of `best/` and the
    last checkpoint scores lower on SELECT_EPISODES episodes of SELECT_SEED, and a run whose
    `best/` is its last checkpoint without comparing."""
    import json

    import experiment

    out, config = experiment_out(tmp_path)
    runs = os.path.join(out, "checkpoints")
    for seed, best_step in ((0, 600), (1, 600), (2, 1000)):
        for folder, step in (("best", best_step), ("step_900", 900), ("step_1000", 1000)):
            write(os.path.join(runs, f"ppo-s-s{seed}", folder, "metadata.json"), json.dumps({"step": step}))
    # Seed 0's best/ scores lower, seed 1's last checkpoint does; seed 2's best/ is its last.
    dpp = {"s0-best": 2.5, "s0-last": 2.7, "s1-best": 2.9, "s1-last": 2.6}
    metrics = {"episodes": experiment.SELECT_EPISODES, "seed": experiment.SELECT_SEED, "scenarios": [{
        "rows": [{"label": k, "metrics": {"drift_plus_penalty": {"mean": v}}} for k, v in dpp.items()]}]}
    monkeypatch.setenv("SELECT_METRICS", json.dumps(metrics))
    binary = str(tmp_path / "splitwise")
    write(binary, SELECT_BINARY)
    os.chmod(binary, 0o755)

    # Nothing compared yet: nothing chosen.
    assert experiment.chosen(out, "ppo", "s", [0, 1, 2]) is None
    picks, cached = experiment.select(binary, out, config, "ppo", "s", [0, 1, 2])
    assert cached is False
    run = functools.partial(os.path.join, runs)
    assert picks[0][:3] == (run("ppo-s-s0", "best"), "best", 600)
    assert picks[1][:3] == (run("ppo-s-s1", "step_1000"), "last", 1000)
    assert picks[2][:3] == (run("ppo-s-s2", "step_1000"), "last", 1000)
    # The comparison asked for the two seeds whose candidates differ, on the selection seed.
    asked = json.load(open(os.path.join(out, "eval", ".select-ppo-s.asked.json")))
    assert asked["extra"] == ["--no-headroom"]
    assert asked["policies"] == (f"s0-best=ckpt:{run('ppo-s-s0', 'best')},s0-last=ckpt:{run('ppo-s-s0', 'step_1000')},"
                     f"s1-best=ckpt:{run('ppo-s-s1', 'best')},s1-last=ckpt:{run('ppo-s-s1', 'step_1000')}")
    # The report's table says which one each seed got, with both scores.
    saved = experiment.RUN_AGENTS
    experiment.RUN_AGENTS = ["ppo"]
    try:
        rows = [x for x in experiment.selection_table(out, ["s"], [0, 1, 2]) if x.startswith("| `")]
    finally:
        experiment.RUN_AGENTS = saved
    assert rows == ["| `s` | ppo | s0 best (600): 2.500 / 2.700; s1 last (1,000): 2.900 / 2.600; s2 last (1,000) |"]
    # Asked again (the wide evaluation does), the comparison is reused.
    again, cached = experiment.select(binary, out, config, "ppo", "s", [0, 1, 2])
    assert cached is True and {k: v[:3] for k, v in again.items()} == {k: v[:3] for k, v in picks.items()}

    # A candidate without a finite score decides nothing: an error naming the comparison, not a
    # silent "last" (and the report's table says "missing").
    metrics["scenarios"][0]["rows"] = [r for r in metrics["scenarios"][0]["rows"] if r["label"] != "s1-last"]
    write(os.path.join(out, "eval", "select-ppo-s", "metrics.json"), json.dumps(metrics))
    with pytest.raises(ValueError, match="select-ppo-s.*seed 1"):
        experiment.chosen(out, "ppo", "s", [0, 1, 2])
    experiment.RUN_AGENTS = ["ppo"]
    try:
        assert "| `s` | ppo | missing |" in experiment.selection_table(out, ["s"], [0, 1, 2])
    finally:
        experiment.RUN_AGENTS = saved


def test_what_the_present_is_worth_takes_the_best_table_aged_included(tmp_path):
    """The table "What a planner without foresight reaches" measures each agent against R, the best
    of `oracle-regime-late`, `oracle-regime-aged` (keyed also on the link state's age: on the
    subway's regular dwells it, not the late one, is what the present tells) and `oracle-mpc`; a
    regime evaluation from before the aged table leaves it out of R."""
    import json

    import experiment

    out = str(tmp_path / "out")

    def metrics(rows, headroom=None):
        return json.dumps({"episodes": 1, "seed": experiment.HELD_OUT_SEED, "scenarios": [{
            "headroom": headroom or {},
            "rows": [{"label": k, "metrics": {"drift_plus_penalty": {"mean": v}}, "members": []}
                     for k, v in rows.items()]}]})

    sc = "subway-commute-phone"
    # Best static 3, bound 1: a share is (3 − x)/2; the agent at 2.2 captures (3 − 2.2)/(3 − R).
    write(os.path.join(out, "eval", f"ppo-{sc}", "metrics.json"), metrics(
        {"ppo-s0": 2.2, "edge-only": 3.0, "service-window": 2.6, "clairvoyant": 1.0},
        {"best_static": "edge-only", "best_causal": "service-window", "clairvoyant": "clairvoyant"}))
    write(os.path.join(out, "eval", f"mpc-{sc}", "metrics.json"),
          metrics({"oracle-mpc": 2.9, "oracle-neurosurgeon": 2.8}))
    write(os.path.join(out, "eval", f"regime-{sc}", "metrics.json"),
          metrics({"oracle-regime": 2.4, "oracle-regime-late": 3.0, "oracle-regime-aged": 2.2}))

    saved = experiment.RUN_AGENTS
    experiment.RUN_AGENTS = ["ppo"]
    try:
        def row():
            return [x for x in experiment.without_foresight(out, [sc], [0]) if x.startswith("| `")]

        # R = the aged table, 2.2: the agent captures all of it.
        assert row() == [f"| `{sc}` | `edge-only` 3.00 | `service-window` 2.60 | 3.00 | 2.20 | 2.40 | 2.80 | "
                         "2.90 | 1.00 | 0.00 | 0.40 | 0.30 | 0.10 | 0.05 | 1.00 |"], row()
        # Without the aged row (an evaluation from before it): R = oracle-mpc, 2.9, so the capture
        # is (3 − 2.2)/(3 − 2.9) = 8.
        write(os.path.join(out, "eval", f"regime-{sc}", "metrics.json"),
              metrics({"oracle-regime": 2.4, "oracle-regime-late": 3.0}))
        assert row() == [f"| `{sc}` | `edge-only` 3.00 | `service-window` 2.60 | 3.00 | – | 2.40 | 2.80 | "
                         "2.90 | 1.00 | 0.00 | – | 0.30 | 0.10 | 0.05 | 8.00 |"], row()
    finally:
        experiment.RUN_AGENTS = saved
