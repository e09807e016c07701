#!/usr/bin/env bash
# Regenerates RESULTS.md: evaluates every shipped scenario with the causal baselines, the best
# static plan (best-fixed, tuned on other seeds), the clairvoyant bound over all plans and over
# whole-layer plans only, and writes the headroom table with captures.
#
#   scripts/results.sh                # 10 episodes per policy, seed 0 (≈ 15-25 min on 2 cores)
#   EPISODES=2 JOBS=1 scripts/results.sh   # a quick look
#
# Needs only the release binary (built here) and python3 (standard library).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
EPISODES="${EPISODES:-10}"
SEED="${SEED:-0}"
JOBS="${JOBS:-2}"
OUT="${OUT:-runs/results}"
SCENARIOS="${SCENARIOS:-$(scripts/scenarios.sh | tr '\n' ' ')}"   # every shipped scenario
POLICIES="cloud-only,edge-only,static-best,neurosurgeon,oracle-neurosurgeon,failover,dpp-one-slot,best-fixed,clairvoyant,clairvoyant-layers"

cargo build --release --locked --quiet
BIN="${CARGO_TARGET_DIR:-target}/release/splitwise"
mkdir -p "$OUT"
start=$(date +%s)
# Where outages follow a schedule (Gamma sojourns), the rule for them too (as scripts/experiment.py).
SCHEDULED="$(python3 -c 'import sys; sys.path.insert(0, "scripts"); import experiment as e
print(" ".join(s for s in sys.argv[1:] if e.scheduled(f"configs/{s}.toml")))' $SCENARIOS)"
SCHEDULE_BASELINES="$(python3 -c 'import sys; sys.path.insert(0, "scripts"); import experiment as e; print(e.SCHEDULE_BASELINES)')"
printf '%s\n' $SCENARIOS | xargs -P "$JOBS" -I{} sh -c \
  "p=$POLICIES; case ' $SCHEDULED ' in *' {} '*) p=\$p,$SCHEDULE_BASELINES;; esac; \
   \"$BIN\" eval --config configs/{}.toml --policies \$p --episodes $EPISODES --seed $SEED --out $OUT/{} > $OUT/{}.log 2>&1 && echo done {}"
end=$(date +%s)
python3 scripts/results.py --out RESULTS.md --runs "$OUT" --seconds $((end - start)) --jobs "$JOBS" \
  --command "scripts/results.sh (EPISODES=$EPISODES SEED=$SEED JOBS=$JOBS)" $SCENARIOS
echo "wrote RESULTS.md"
