#!/usr/bin/env python3
"""Load splitwise TensorBoard event files with TensorBoard's own EventAccumulator.

Proves that files written by `src/tensorboard.rs` are readable by TensorBoard itself (not only by
our Rust reader in `tests/tensorboard_format.rs`), and prints every scalar tag with its number of
points and its last (step, value).

Usage:
    python3 -m venv /tmp/tbvenv && /tmp/tbvenv/bin/pip install tensorboard
    /tmp/tbvenv/bin/python scripts/check_tensorboard.py DIR

DIR is a run directory holding `events.out.tfevents.*` files. To get one from the test suite:
    SPLITWISE_KEEP_TB_DIR=/tmp/tb_check cargo test -p splitwise --test tensorboard_format
Exits non-zero if the directory holds no event file or no scalar.
"""

import argparse
import pathlib
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=pathlib.Path, help="directory with events.out.tfevents.* files")
    args = parser.parse_args()

    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        print("the `tensorboard` package is not installed in this Python; see --help", file=sys.stderr)
        return 2

    files = sorted(args.dir.glob("*tfevents*"))
    if not files:
        print(f"no event files (*tfevents*) in {args.dir}", file=sys.stderr)
        return 1
    for path in files:
        print(f"file: {path.name} ({path.stat().st_size} bytes)")

    # size_guidance 0 = keep every scalar point instead of TensorBoard's default reservoir
    # sample of 10,000, so the counts printed are exact.
    accumulator = EventAccumulator(str(args.dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags().get("scalars", [])
    if not tags:
        print(f"TensorBoard found no scalars in {args.dir}", file=sys.stderr)
        return 1

    print(f"file_version: {accumulator.file_version}")
    print(f"{len(tags)} scalar tags")
    print(f"{'tag':<40} {'count':>6} {'last step':>20} {'last value':>16}")
    for tag in sorted(tags):
        events = accumulator.Scalars(tag)
        last = events[-1]
        print(f"{tag:<40} {len(events):>6} {last.step:>20} {last.value:>16.8g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
