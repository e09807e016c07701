#!/usr/bin/env python3
"""Model-based RL against model-free PPO on ALS's environment (issue 13): trains
configs/ppo-als.toml and configs/mbrl-als.toml with each seed, reads every evaluation return and
the expensive evaluations each agent had spent by then from the runs' TensorBoard logs, and writes
the "Model-based RL on ALS" section of RESULTS.md. Finished runs under --out are reused.

Expensive evaluations: MBRL logs its running total (mbrl/expensive_evaluations); PPO's env logs a
per-step mean per rollout (env/expensive_evaluations), summed here over each rollout's steps.
Evaluation episodes run on the real environment for both agents and are counted for neither.

The issue's sample-efficiency measure is the normalised score (R − R_random)/(R_PPO − R_random):
R is a run's evaluation return, R_PPO the mean of model-free PPO's final evaluation returns over
the seeds, and R_random the random policy's mean episode return over RANDOM_EPISODES episodes of
the same environment (`splitwise eval --policies random`; other seeds than the runs' 32
evaluation episodes, so it is the random policy's expectation, not its score on those). Each run
is reported at its first evaluation with a score of 0.95 or more, and at the stricter target of
PPO's lowest final return. Standard library only."""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from experiment import record_wall, scalars, spent_by_step, svg_chart  # noqa: E402  (the TensorBoard reader, charts and evaluation counts, one copy)
import math  # noqa: E402

MARK_BEGIN = "<!-- mbrl-als:begin (scripts/mbrl_als.sh writes this section) -->"
MARK_END = "<!-- mbrl-als:end -->"
AGENTS = [("ppo", "configs/ppo-als.toml"), ("mbrl", "configs/mbrl-als.toml")]
RANDOM_EPISODES = 4000
SCORE_TARGET = 0.95


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


def curve(run):
    """[(expensive evaluations spent, eval return, step)] at each evaluation."""
    s = scalars(run)
    spent = spent_by_step(s)
    return [(spent.get(step, float("nan")), r, step) for step, r in s.get("charts/eval_return", [])]


def random_return(binary, out):
    """The random policy's mean episode return on ALS's environment (`splitwise eval`)."""
    folder = os.path.join(out, "eval-random")
    metrics = os.path.join(folder, "metrics.json")
    if not os.path.exists(metrics):
        subprocess.run([binary, "eval", "--config", AGENTS[0][1], "--policies", "random", "--no-headroom",
                        "--episodes", str(RANDOM_EPISODES), "--seed", "0", "--out", folder], check=True,
                       stdout=subprocess.DEVNULL)
    with open(metrics) as f:
        return json.load(f)["rows"][0]["episode_return"]["mean"]


def first(c, ok):
    """(expensive evaluations, real steps) at the first evaluation whose return satisfies `ok`."""
    return next(((e, step) for e, r, step in c if ok(r)), None)


def cells(hit):
    return [f"{hit[0]:.0f}", str(hit[1])] if hit else ["never", "–"]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if n else float("nan")


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
            curves[(agent, seed)] = curve(train(a.binary, a.out, agent, config, seed))
    r_random = random_return(a.binary, a.out)
    seconds = record_wall(a.out, time.time() - start, did_work)
    finals = [c[-1][1] for (agent, _), c in curves.items() if agent == "ppo" and c]
    target = min(finals)
    r_ppo = sum(finals) / len(finals)
    score = lambda r: (r - r_random) / (r_ppo - r_random)  # noqa: E731
    lines = [MARK_BEGIN, "## Model-based RL on ALS (issue 13)", "",
             f"- Command: `{a.command}`; machine: {os.cpu_count()} CPUs; wall time {seconds:.0f} s "
             "(training and evaluation, runs one after another).",
             "- Agents: model-free PPO (`configs/ppo-als.toml`: one expensive evaluation per episode start "
             "and per split change) and MBRL (`configs/mbrl-als.toml`: the same environment; the policy "
             "trains on a learned surrogate of the expensive term between real steps). Evaluation: the "
             "greedy policy on 32 real episodes at each evaluation (not counted for either).",
             f"- Normalised score (R − R_random)/(R_PPO − R_random) with R_PPO = {r_ppo:.4f} (model-free PPO's "
             f"final evaluation return, mean over the seeds) and R_random = {r_random:.4f} (the random policy, "
             f"`splitwise eval --policies random` on {RANDOM_EPISODES} episodes); a run reaches the issue's "
             f"target at its first evaluation with a score of {SCORE_TARGET} or more.",
             f"- Stricter target: model-free PPO's lowest final evaluation return over the seeds, {target:.4f}.",
             "",
             f"| agent | seed | expensive evaluations to score {SCORE_TARGET} | real steps then "
             "| expensive evaluations to the stricter target | real steps then | final eval return (score) "
             "| expensive evaluations in all | evaluations (spent, return) |",
             "|---|---|---|---|---|---|---|---|---|"]
    to_score = {}
    for (agent, seed), c in curves.items():
        hit_score = first(c, lambda r: score(r) >= SCORE_TARGET)
        hit_target = first(c, lambda r: r >= target)
        if hit_score:
            to_score.setdefault(agent, []).append(hit_score[0])
        points = ", ".join(f"({e:.0f}, {r:.4f})" for e, r, _ in c[:6]) + (" …" if len(c) > 6 else "")
        lines.append(f"| {agent} | {seed} | " + " | ".join(cells(hit_score) + cells(hit_target)) +
                     f" | {c[-1][1]:.4f} ({score(c[-1][1]):.2f}) | {c[-1][0]:.0f} | {points} |")
    reached = {agent: len(v) for agent, v in to_score.items()}
    if reached.get("ppo") == len(seeds) and reached.get("mbrl") == len(seeds):
        ratio = median(to_score["mbrl"]) / median(to_score["ppo"])
        lines += ["", f"MBRL needs {ratio:.4f}× model-free PPO's expensive evaluations to reach a normalised score "
                  f"of {SCORE_TARGET} (medians over the seeds: {median(to_score['mbrl']):.0f} against "
                  f"{median(to_score['ppo']):.0f}; the issue's target is at most 1/10)."]
    else:
        lines += ["", f"Runs that reached a normalised score of {SCORE_TARGET}: "
                  + ", ".join(f"{agent} {reached.get(agent, 0)}/{len(seeds)}" for agent, _ in AGENTS) + "."]
    os.makedirs(a.figures, exist_ok=True)
    figure = os.path.join(a.figures, "eval-return-vs-evaluations.svg")
    colours = {"ppo": ["#1f77b4", "#4f97c4", "#8fbfe0"], "mbrl": ["#d62728", "#e36061", "#f0a0a0"]}
    series = [(f"{agent} s{seed}", colours[agent][i % 3], [(math.log10(max(e, 1)), r) for e, r, _ in c if e == e])
              for i, ((agent, seed), c) in enumerate(sorted(curves.items()))]
    svg_chart(figure, "ALS: evaluation return against expensive evaluations spent", series, "eval return",
              hlines=[("stricter target", "#444", target),
                      (f"score {SCORE_TARGET}", "#999", r_random + SCORE_TARGET * (r_ppo - r_random))], xlabel="expensive evaluations spent (log scale)",
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
