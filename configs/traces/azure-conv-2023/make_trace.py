#!/usr/bin/env python3
"""Regenerates arrival-rate-10s.csv and prints the length fits from the Azure LLM inference trace
2023 (conversation service; CC-BY 4.0, Patel et al., ISCA 2024). See README.md for what it does.

Usage: python3 make_trace.py /path/to/AzureLLMInferenceTrace_conv.csv [lambda_device_per_s]
"""
import csv
import math
import os
import sys
from datetime import datetime
from statistics import NormalDist

BIN_S = 10.0
N_BINS = 350  # whole 10 s bins after the first request (3500 s; the last 1.7 s of the trace are dropped)


def load(path):
    rows = list(csv.DictReader(open(path, newline="")))
    ts = [datetime.strptime(r["TIMESTAMP"][:26], "%Y-%m-%d %H:%M:%S.%f") for r in rows]
    ctx = [int(r["ContextTokens"]) for r in rows]
    gen = [int(r["GeneratedTokens"]) for r in rows]
    return ts, ctx, gen


def rate_trace(ts, lam_dev, out):
    t0 = ts[0]
    rel = [(t - t0).total_seconds() for t in ts]
    counts = [0] * N_BINS
    for x in rel:
        i = int(x // BIN_S)
        if i < N_BINS:
            counts[i] += 1
    lam_tot = sum(counts) / (N_BINS * BIN_S)
    scale = lam_dev / lam_tot
    with open(out, "w") as f:
        f.write("# Azure LLM inference trace 2023, conversation service (CC-BY 4.0; see README.md, LICENSE-CC-BY-4.0.txt).\n")
        f.write(f"# 10 s bins of TIMESTAMP from the first request ({t0} UTC), {N_BINS} bins = {N_BINS * BIN_S:.0f} s.\n")
        f.write(f"# rate_per_s = count / {BIN_S:.0f} s x {lam_dev} / {lam_tot:.4f} (datacenter aggregate thinned to one device,\n")
        f.write(f"# mean {lam_dev} req/s); count = raw requests of the whole service in the bin.\n")
        f.write("time_s,rate_per_s,count\n")
        for i, c in enumerate(counts):
            f.write(f"{i * BIN_S:.0f},{c / BIN_S * scale:.6f},{c}\n")
    mean_c = sum(counts) / N_BINS
    sd_c = math.sqrt(sum((c - mean_c) ** 2 for c in counts) / N_BINS)
    print(f"{out}: {N_BINS} bins, aggregate {lam_tot:.4f} req/s, thinning factor {scale:.6f}, "
          f"count per bin mean {mean_c:.1f} sd {sd_c:.1f} (Poisson sd {math.sqrt(mean_c):.1f}), min {min(counts)} max {max(counts)}")


PS = [0.1, 0.25, 0.5, 0.75, 0.9]
N = NormalDist()


def trunc_q(mu, sg, a, b, p):
    fa, fb = N.cdf((a - mu) / sg), N.cdf((b - mu) / sg)
    q = fa + p * (fb - fa)
    return mu + sg * N.inv_cdf(q) if 0.0 < q < 1.0 else float("nan")


def fit(x, lo, hi):
    """Truncated log-normal (the simulator's LengthSampler) fitted by least squares on the log
    10/25/50/75/90 % quantiles of the requests inside [lo, hi] (the trace is multimodal, so a
    plain MLE lands on a poor compromise; quantile matching keeps the body of the law)."""
    ins = sorted(v for v in x if lo <= v <= hi)
    n = len(ins)
    emp = [math.log(ins[min(n - 1, int(p * n))]) for p in PS]
    a, b = math.log(lo), math.log(hi)
    best = None
    for mi in range(400):
        mu = a + (math.log(hi * 3) - a) * mi / 400
        for si in range(1, 200):
            sg = si * 0.01
            err = sum((trunc_q(mu, sg, a, b, p) - e) ** 2 for p, e in zip(PS, emp))
            if err == err and (best is None or err < best[0]):
                best = (err, mu, sg)
    err, mu, sg = best
    k = 4000
    fit_mean = sum(math.exp(trunc_q(mu, sg, a, b, (i + 0.5) / k)) for i in range(k)) / k
    print(f"  [{lo}, {hi}]: {100 * n / len(x):.1f}% of requests inside; median_tokens = {math.exp(mu):.0f}, "
          f"sigma = {sg:.2f}; inside quantiles {[ins[min(n - 1, int(p * n))] for p in PS]} vs fitted "
          f"{[round(math.exp(trunc_q(mu, sg, a, b, p))) for p in PS]}; mean {sum(ins) / n:.0f} vs {fit_mean:.0f}")


if __name__ == "__main__":
    # Default: the project's reference copy in ../shared/ beside the repository (not shipped;
    # pass the CSV's path as the first argument otherwise).
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "..", "..", "shared", "data", "azure-llm-inference-2023",
                           "AzureLLMInferenceTrace_conv.csv")
    path = sys.argv[1] if len(sys.argv) > 1 else default
    if not os.path.exists(path):
        sys.exit(f"{path}: no such file; pass the path of AzureLLMInferenceTrace_conv.csv as the first argument")
    lam_dev = float(sys.argv[2]) if len(sys.argv) > 2 else 0.02
    ts, ctx, gen = load(path)
    rate_trace(ts, lam_dev, "arrival-rate-10s.csv")
    for name, x, windows in [("ContextTokens", ctx, [(8, 3584), (8, 768)]), ("GeneratedTokens", gen, [(4, 512), (4, 256)])]:
        xs = sorted(x)
        lx = [math.log(v) for v in x]
        mu = sum(lx) / len(lx)
        print(f"{name}: n {len(x)}, median {xs[len(xs) // 2]}, p5 {xs[len(xs) // 20]}, p95 {xs[len(xs) * 19 // 20]}, "
              f"max {xs[-1]}, log-mean exp {math.exp(mu):.0f}, log-sd {math.sqrt(sum((v - mu) ** 2 for v in lx) / len(lx)):.3f}")
        for lo, hi in windows:
            fit(x, lo, hi)
