#!/usr/bin/env python3
"""Where a policy sends requests by the link's service age at their start (docs/agents.md, "The
subway's regular station dwell").

Reads an evaluation's `per_slot.csv` and `per_request.csv` (`splitwise eval ... --trace-episodes N`
with N = --episodes, and `edge-only` among the policies: its per-slot rows give the link state,
which no policy changes). The service age at a request's start is the number of whole slots since
the last slot that ended without service (crossing failure probability 1). Prints, per policy and
5-second age bucket: requests, share started with a cloud split, and their mean latency.

    python3 scripts/service_age.py OUT_DIR POLICY [POLICY ...]
"""

import collections
import csv
import os
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, policies = sys.argv[1], sys.argv[2:]
    for name in ("per_slot.csv", "per_request.csv"):
        if not os.path.isfile(os.path.join(out, name)):
            sys.exit(f"{out}/{name}: not found (the --out folder of `splitwise eval ... --trace-episodes N`)")
    outage = {}
    with open(os.path.join(out, "per_slot.csv")) as f:
        for r in csv.DictReader(f):
            if r["policy"] == "edge-only":
                outage[(int(r["episode"]), int(r["slot"]))] = float(r["crossing_failure_probability"]) >= 1.0
    if not outage:
        sys.exit(f"{out}/per_slot.csv has no edge-only rows (evaluate edge-only with --trace-episodes)")

    def age(ep, t):
        a, k = 0, t - 1
        while k >= 0 and not outage.get((ep, k), True):
            a, k = a + 1, k - 1
        return a

    with open(os.path.join(out, "per_request.csv")) as f:
        requests = list(csv.DictReader(f))
    # Edge-only runs every layer on the device: its split is the model's layer count, and a
    # smaller split leaves work to the cloud.
    n_layers = max((int(r["split_layer"]) for r in requests if r["policy"] == "edge-only"), default=None)
    if n_layers is None:
        sys.exit(f"{out}/per_request.csv has no edge-only requests")

    def bucket(ep, t):
        if outage.get((ep, t - 1), True):
            return "tunnel"
        k = min(age(ep, t) // 5, 8) * 5
        return f"{k}+ s" if k == 40 else f"{k}-{k + 5} s"

    for policy in policies:
        buckets = collections.defaultdict(lambda: [0, 0, 0.0])
        for r in requests:
            if r["policy"] != policy:
                continue
            b = buckets[bucket(int(r["episode"]), int(r["slot"]))]
            b[0] += 1
            b[1] += int(r["split_layer"]) < n_layers
            b[2] += float(r["latency_s"])
        print(policy)
        order = ["tunnel"] + [f"{k}-{k + 5} s" for k in range(0, 40, 5)] + ["40+ s"]
        for key in (k for k in order if k in buckets):
            n, cloud, lat = buckets[key]
            print(f"  {key:>8}: {n:5d} requests, {cloud / n:4.2f} to the cloud, mean latency {lat / n:6.1f} s")


if __name__ == "__main__":
    main()
