#!/usr/bin/env python3
"""Model-based RL against model-free PPO on ALS's environment (issue 13): trains
configs/ppo-als.toml and configs/mbrl-als.toml with each seed, reads every evaluation return and
the expensive evaluations each agent had spent by then from the runs' TensorBoard logs, and writes
the "Model-based RL on ALS" section of RESULTS.md. Finished runs under --out are reused.

Expensive evaluations: MBRL logs its running total (mbrl/expensive_evaluations); PPO's env logs a
per-step mean per rollout (env/expensive_evaluations), summed here over each rollout's steps.
Evaluation episodes run on the real environment for both agents and are counted for neither.
Standard library only."""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from experiment import record_wall, scalars, svg_chart  # noqa: E402  (the TensorBoard reader and charts, one copy)
import math  # noqa: E402

MARK_BEGIN = "<!-- mbrl-als:begin (scripts/mbrl_als.sh writes this section) -->"
MARK_END = "<!-- mbrl-als:end -->"
AGENTS = [("ppo", "configs/ppo-als.toml"), ("mbrl", "configs/mbrl-als.toml")]


def run_config(out, agent, config):
    """The shipped config with its run folders under `out` (it has no [logging] table)."""
    text = open(config).read()
    if "[logging]" in text:
        sys.exit(f"{config} has a [logging] table; this script adds its own")
    checkpoints = os.path.abspath(os.path.join(out, "checkpoints"))
    path = os.path.join(out, "configs", f"{agent}.toml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text.rstrip("\n") + f'\n\n[logging]\ncheckpoints_dir = "{checkpoints}"\nprogress = "never"\n')
    os.replace(path + ".tmp", path)
    return path


def train(binary, out, agent, config, seed):
    run = os.path.join(out, "checkpoints", f"{agent}-s{seed}")
    if os.path.exists(os.path.join(run, "done")):
        return run
    if os.path.exists(run):
        args = ["--resume", run]
    else:
        args = ["--seed", str(seed), "--run-name", f"{agent}-s{seed}"]
    subprocess.run([binary, "train", "--config", run_config(out, agent, config), *args], check=True,
                   stdout=subprocess.DEVNULL)
    open(os.path.join(run, "done"), "w").close()
    return run


def curve(run, agent):
    """[(expensive evaluations spent, eval return)] at each evaluation."""
    s = scalars(run)
    evals = s.get("charts/eval_return", [])
    if agent == "mbrl":
        spent = dict(s.get("mbrl/expensive_evaluations", []))
    else:
        spent, total, prev = {}, 0.0, 0
        for step, per_step in s.get("env/expensive_evaluations", []):
            total += per_step * (step - prev)
            prev = step
            spent[step] = total
    return [(spent.get(step, float("nan")), r, step) for step, r in evals]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", default="0 1 2")
    ap.add_argument("--results", default="RESULTS.md")
    ap.add_argument("--command", required=True)
    ap.add_argument("--figures", default="docs/figures/mbrl-als")
    a = ap.parse_args()
    seeds = [int(x) for x in a.seeds.split()]
    start = time.time()
    curves = {}
    did_work = False
    for agent, config in AGENTS:
        for seed in seeds:
            did_work |= not os.path.exists(os.path.join(a.out, "checkpoints", f"{agent}-s{seed}", "done"))
            curves[(agent, seed)] = curve(train(a.binary, a.out, agent, config, seed), agent)
    seconds = record_wall(a.out, time.time() - start, did_work)
    finals = [c[-1][1] for (agent, _), c in curves.items() if agent == "ppo" and c]
    target = min(finals)
    lines = [MARK_BEGIN, "## Model-based RL on ALS (issue 13)", "",
             f"- Command: `{a.command}`; machine: {os.cpu_count()} CPUs; wall time {seconds:.0f} s "
             "(training and evaluation, runs one after another).",
             "- Agents: model-free PPO (`configs/ppo-als.toml`: one expensive evaluation per episode start "
             "and per split change) and MBRL (`configs/mbrl-als.toml`: the same environment; the policy "
             "trains on a learned surrogate of the expensive term between real steps). Evaluation: the "
             "greedy policy on 32 real episodes at each evaluation (not counted for either).",
             f"- Target: model-free PPO's lowest final evaluation return over the seeds, {target:.4f}.",
             "",
             "| agent | seed | expensive evaluations to reach the target | real steps then | final eval return "
             "| expensive evaluations in all | evaluations (spent, return) |",
             "|---|---|---|---|---|---|---|"]
    for (agent, seed), c in curves.items():
        hit = next(((e, step) for e, r, step in c if r >= target), None)
        points = ", ".join(f"({e:.0f}, {r:.4f})" for e, r, _ in c[:6]) + (" …" if len(c) > 6 else "")
        lines.append(f"| {agent} | {seed} | {f'{hit[0]:.0f}' if hit else 'never'} | "
                     f"{hit[1] if hit else '–'} | {c[-1][1]:.4f} | {c[-1][0]:.0f} | {points} |")
    os.makedirs(a.figures, exist_ok=True)
    figure = os.path.join(a.figures, "eval-return-vs-evaluations.svg")
    colours = {"ppo": ["#1f77b4", "#4f97c4", "#8fbfe0"], "mbrl": ["#d62728", "#e36061", "#f0a0a0"]}
    series = [(f"{agent} s{seed}", colours[agent][i % 3], [(math.log10(max(e, 1)), r) for e, r, _ in c if e == e])
              for i, ((agent, seed), c) in enumerate(sorted(curves.items()))]
    svg_chart(figure, "ALS: evaluation return against expensive evaluations spent", series, "eval return",
              hlines=[("target", "#444", target)], xlabel="expensive evaluations spent (log scale)",
              xfmt=lambda x: f"{10 ** x:.0f}", x_from_zero=False)
    lines += ["", f"![evaluation return against expensive evaluations]({figure})", "", MARK_END]
    section = "\n".join(lines)
    text = open(a.results).read() if os.path.exists(a.results) else "# Results\n"
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + section + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(a.results + ".tmp", "w") as f:
        f.write(text)
    os.replace(a.results + ".tmp", a.results)
    print(section)


if __name__ == "__main__":
    main()
