#!/usr/bin/env bash
# The shipped scenarios, one name per line: configs/*.toml that are not training configs (no
# `[agent]` or `[training]` table), the rule python/build.rs compiles into the Python module.
# The one list scripts/results.sh and scripts/experiment.sh default to, derived from the folder
# so a new scenario file is picked up without editing either script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for f in configs/*.toml; do
  if ! grep -qE '^[[:space:]]*\[(agent|training)\][[:space:]]*$' "$f"; then
    basename "$f" .toml
  fi
done
