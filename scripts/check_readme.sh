#!/usr/bin/env bash
# Runs every command of README.md's ```sh blocks, in order, on a fresh clone of this repository
# (its committed HEAD), and checks each exit code and a line of its output. What a new user
# meets, without touching their machine: `cargo install` goes to a temporary CARGO_INSTALL_ROOT
# put first on the PATH, so the README's commands run exactly as written.
#
#   scripts/check_readme.sh                 # everything, in a temporary folder
#   KEEP=1 scripts/check_readme.sh          # keep the clone (its path is printed)
#   CARGO_TARGET_DIR=... scripts/check_readme.sh   # reuse compiled dependencies (not "fresh")
#     (then the workspace's test binaries in that folder embed the deleted clone's path: run
#     `cargo clean --release -p splitwise -p splitwise-env -p splitwise-agents -p splitwise-eval`
#     with the same CARGO_TARGET_DIR before testing this checkout with it)
#
# `tensorboard` (a server) and commands whose program is not installed are reported and
# skipped; anything else that fails stops the script with its output.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
[[ "${KEEP:-0}" == 1 ]] || trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/clone"
export CARGO_INSTALL_ROOT="$work/install"
export PATH="$CARGO_INSTALL_ROOT/bin:$PATH"
cd "$work/clone"

# The commands, in order: ```sh blocks, continuation lines joined, comment lines dropped.
mapfile -t commands < <(awk '
  /^```sh$/ { inside = 1; next }
  /^```$/   { inside = 0; next }
  inside {
    line = $0
    if (line ~ /^[[:space:]]*#/ || line ~ /^[[:space:]]*$/) next
    if (sub(/\\[[:space:]]*$/, "", line)) { pending = pending line; next }
    print pending line; pending = ""
  }' README.md)

# What a successful run of each program prints.
expect() {
  case "$1" in
    "cargo install"*) echo "Installed package\|Replacing\|Replaced" ;;
    "cargo test"*) echo "test result: ok" ;;
    "splitwise train"*) echo "trained to step\|is finished" ;;
    "splitwise simulate"*) echo "mean reward" ;;
    "splitwise eval"*) echo "report:" ;;
    "splitwise export"*) echo "sidecar" ;;
    *) echo "" ;;
  esac
}

n=0
for cmd in "${commands[@]}"; do
  n=$((n + 1))
  program="${cmd%% *}"
  if [[ "$program" == tensorboard ]]; then
    echo "[$n] SKIP (a server that runs until stopped): $cmd"
    continue
  fi
  if ! command -v "$program" >/dev/null 2>&1 && [[ "$program" != splitwise ]]; then
    echo "[$n] SKIP (no $program installed): $cmd"
    continue
  fi
  start=$(date +%s)
  if ! output="$(bash -c "$cmd" 2>&1)"; then
    echo "[$n] FAIL (exit code): $cmd"; echo "$output" | tail -30; exit 1
  fi
  pattern="$(expect "$cmd")"
  if [[ -n "$pattern" ]] && ! grep -q "$pattern" <<<"$output"; then
    echo "[$n] FAIL (output lacks '$pattern'): $cmd"; echo "$output" | tail -30; exit 1
  fi
  echo "[$n] ok in $(( $(date +%s) - start )) s: $cmd"
done
echo "all ${#commands[@]} README commands ran in order on a fresh clone (${work}/clone)"
