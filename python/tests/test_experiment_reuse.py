"""scripts/experiment.py reuses a finished run or evaluation only for the same inputs: the run
config (parsed), the scenario file it names (parsed) and the bytes of the traces that names. A
changed scenario once reused stale runs silently (2026-12-04)."""

import os
import sys

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
