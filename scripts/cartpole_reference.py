#!/usr/bin/env python3
"""Records reference CartPole-v1 trajectories from Gymnasium itself and writes them, with the test
that replays them, to env/tests/cartpole_reference.rs.

Not needed by CI: the generated Rust file holds the data. Re-run only to regenerate it, in a
throwaway venv:

    python3 -m venv /tmp/gymvenv && /tmp/gymvenv/bin/pip install gymnasium==1.4.0
    /tmp/gymvenv/bin/python scripts/cartpole_reference.py

Each episode starts from a chosen float64 state written into `env.unwrapped.state` right after
`reset` (so Gymnasium's TimeLimit counter is at 0), then steps `gymnasium.make("CartPole-v1")`
with actions from a balancing controller, seeded random actions, or a mix, until it terminates
or is truncated. States are stored with `repr` (shortest round-trip decimal, which Rust parses
to the same bits); short episodes keep every state, long ones every 10th and the last.
"""

import math
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "env" / "tests" / "cartpole_reference.rs"
KEEP_EVERY_STATE_UP_TO = 60  # episodes up to this length store every state
STRIDE = 10  # longer episodes store every STRIDE-th state and the last


def balance(s):
    """The controller of cartpole.rs's unit tests: balances 500 steps from reset states."""
    x, x_dot, theta, theta_dot = s
    return 1 if 0.1 * x + 0.5 * x_dot + 10.0 * theta + 2.0 * theta_dot > 0.0 else 0


def make_policy(kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "balance":
        return lambda t, s: balance(s)
    if kind == "random":
        return lambda t, s: int(rng.integers(0, 2))
    if kind == "noisy-balance":  # balance, but a seeded random action 25% of the time
        return lambda t, s: int(rng.integers(0, 2)) if rng.random() < 0.25 else balance(s)
    if kind == "right":
        return lambda t, s: 1
    if kind.startswith("balance-then-right@"):  # balance until step k, then always push right
        k = int(kind.split("@")[1])
        return lambda t, s: balance(s) if t < k else 1
    raise ValueError(kind)


def run(env, initial, kind, seed):
    env.reset(seed=seed)
    env.unwrapped.state = np.array(initial, dtype=np.float64)
    policy = make_policy(kind, seed)
    actions, states, rewards = [], [], []
    while True:
        a = policy(len(actions), env.unwrapped.state)
        _, r, terminated, truncated, _ = env.step(a)
        actions.append(a)
        states.append([float(v) for v in env.unwrapped.state])
        rewards.append(float(r))
        if terminated or truncated:
            return actions, states, rewards, bool(terminated), bool(truncated)


def episodes():
    """(name, initial state, policy kind, seed): inside the reset box, outside it, near and past
    the thresholds, with short (random, constant) and long (balanced, truncated) runs."""
    inside = [
        [0.01, -0.02, 0.03, 0.04],
        [-0.049, 0.049, -0.049, 0.049],
        [0.0, 0.0, 0.0, 0.0],
        [0.037, 0.011, -0.042, -0.005],
        [-0.0123, 0.0456, 0.0078, -0.0321],
    ]
    outside = [
        [1.5, 0.5, 0.1, -0.3],
        [-2.2, -0.8, -0.15, 0.6],
        [2.39, 1.0, 0.0, 0.0],  # near the x threshold, running out
        [0.0, 0.0, 0.2094, 0.1],  # near the angle threshold, falling out
        [0.3, -1.5, -0.2, 1.8],
        [-1.0, 2.0, 0.18, -2.5],
        [0.5, 0.0, -0.1, 0.0],
    ]
    out = []
    for i, s in enumerate(inside):
        out.append((f"inside-{i}-balance", s, "balance", 100 + i))
        out.append((f"inside-{i}-random", s, "random", 200 + i))
        if i in (0, 1, 3):
            out.append((f"inside-{i}-noisy-balance", s, "noisy-balance", 300 + i))
    for i, s in enumerate(outside):
        out.append((f"outside-{i}-random", s, "random", 400 + i))
        out.append((f"outside-{i}-balance", s, "balance", 500 + i))
    out.append(("outside-x-threshold-right", [2.45, 0.0, 0.0, 0.0], "right", 600))
    out.append(("inside-right", [0.02, 0.01, -0.01, 0.03], "right", 601))
    return out


def terminates_at_500(env):
    """A balance-then-push episode whose terminating step is exactly step 500: Gymnasium's
    TimeLimit then reports terminated and truncated together."""
    initial = [0.01, -0.02, 0.03, 0.04]
    for k in range(480, 500):
        kind = f"balance-then-right@{k}"
        result = run(env, initial, kind, 700)
        if len(result[0]) == 500 and result[3]:
            return ("terminates-at-step-500", initial, kind, 700), result
    raise RuntimeError("no switch step makes the episode terminate at exactly step 500")


def rust_f64(v):
    r = repr(v)
    assert float(r) == v and math.isfinite(v)
    return r if ("." in r or "e" in r) else r + ".0"


def rust_state(s):
    return "[" + ", ".join(rust_f64(v) for v in s) + "]"


def run_length(values):
    runs = []
    for v in values:
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return runs


def episode_source(name, initial, kind, result):
    actions, states, rewards, terminated, truncated = result
    n = len(actions)
    if n <= KEEP_EVERY_STATE_UP_TO:
        kept = list(range(1, n + 1))
    else:
        kept = sorted(set(range(STRIDE, n + 1, STRIDE)) | {n})
    action_str = "".join(str(a) for a in actions)
    chunks = [action_str[i : i + 100] for i in range(0, n, 100)]
    lines = [
        "    Episode {",
        f'        name: "{name}",',
        f'        policy: "{kind}",',
        f"        initial: {rust_state(initial)},",
    ]
    if len(chunks) == 1:
        lines += [f'        actions: "{chunks[0]}",']
    else:
        lines += ["        actions: concat!("]
        lines += [f'            "{c}",' for c in chunks]
        lines += ["        ),"]
    lines += ["        states: &["]
    for t in kept:
        line = f"            ({t}, {rust_state(states[t - 1])}),"
        if len(line) > 120:  # rustfmt.toml's max_width; wrap after the second component
            parts = [rust_f64(v) for v in states[t - 1]]
            head = f"            ({t}, [{parts[0]}, {parts[1]},"
            line = head + "\n" + " " * (head.index("[") + 1) + f"{parts[2]}, {parts[3]}]),"
        lines.append(line)
    lines += ["        ],"]
    runs = ", ".join(f"({rust_f64(v)}, {c})" for v, c in run_length(rewards))
    lines += [
        f"        rewards: &[{runs}],",
        f"        terminated: {str(terminated).lower()},",
        f"        truncated: {str(truncated).lower()},",
        "    },",
    ]
    return lines


HEADER = """\
//! Reference CartPole-v1 trajectories and the test that replays them in our `CartPole`: every
//! stored `f64` state must be bit-identical and the episode must end at the same step with the
//! same flags.
//! Recorded from Gymnasium {gym} (numpy {np}, Python {py}, {machine}).
//!
//! GENERATED by `scripts/cartpole_reference.py`; do not edit by hand. To regenerate:
//!     python3 -m venv /tmp/gymvenv && /tmp/gymvenv/bin/pip install gymnasium=={gym}
//!     /tmp/gymvenv/bin/python scripts/cartpole_reference.py
//!
//! Each episode: `gymnasium.make("CartPole-v1")`, `reset(seed)`, then `env.unwrapped.state` is set
//! to `initial` (float64) and the recorded actions are stepped until the episode ends. `states`
//! holds `(t, state after t steps)` (`repr` decimals, which parse back to the same bits): every
//! step for episodes of up to {keep} steps, otherwise every {stride}th and the last. `rewards` is
//! run-length encoded `(reward, count)`. `terminated`/`truncated` are Gymnasium's flags at the last
//! step (all earlier steps had both false).
//!
//! Bit equality relies on `cos`/`sin` agreeing: numpy's float64 `np.cos`/`np.sin` and Rust's
//! `f64::cos`/`sin` both gave the platform libm's results on the recording machine (the script
//! checks 200k random angles). A platform whose libm rounds differently could see last-bit
//! differences; none were seen here.
"""

TEST = """
struct Episode {
    name: &'static str,
    policy: &'static str,
    initial: [f64; 4],
    actions: &'static str,
    states: &'static [(u32, [f64; 4])],
    rewards: &'static [(f64, u32)],
    terminated: bool,
    truncated: bool,
}

/// Replays one recorded episode; returns a description of the first mismatch.
fn replay(ep: &Episode) -> Result<(), String> {
    let mut env = CartPole::new();
    env.reset(Some(0));
    env.set_physics_state(ep.initial);
    let rewards = ep.rewards.iter().flat_map(|&(r, n)| std::iter::repeat_n(r, n as usize));
    let mut expected_states = ep.states.iter().peekable();
    let n = ep.actions.len();
    for (t, (c, want_reward)) in (1..).zip(ep.actions.chars().zip(rewards)) {
        let action = match c {
            '0' => 0,
            '1' => 1,
            other => return Err(format!("bad action character {other:?}")),
        };
        let step = env.step(&[action]).map_err(|e| format!("step {t}: {e}"))?;
        if step.reward != want_reward {
            return Err(format!("step {t}: reward {} != {want_reward}", step.reward));
        }
        if let Some(&(_, want)) = expected_states.next_if(|(k, _)| *k as usize == t) {
            let got = env.physics_state();
            if got.map(f64::to_bits) != want.map(f64::to_bits) {
                return Err(format!("step {t}: state {got:?} != Gymnasium's {want:?}"));
            }
        }
        let last = t == n;
        // Gymnasium's TimeLimit also sets truncated when step 500 terminates; ours keeps the
        // two flags exclusive (cartpole.rs): the expected flag is `truncated && !terminated`.
        let (want_term, want_trunc) =
            if last { (ep.terminated, ep.truncated && !ep.terminated) } else { (false, false) };
        if (step.terminated, step.truncated) != (want_term, want_trunc) {
            return Err(format!(
                "step {t}: (terminated, truncated) = {:?}, want {:?}",
                (step.terminated, step.truncated),
                (want_term, want_trunc)
            ));
        }
    }
    if expected_states.next().is_some() || ep.rewards.iter().map(|r| r.1 as usize).sum::<usize>() != n {
        return Err("stored states or rewards do not fit the action count".into());
    }
    Ok(())
}

#[test]
fn gymnasium_trajectories_replay_bit_identically() {
    let failures: Vec<String> = EPISODES
        .iter()
        .filter_map(|ep| replay(ep).err().map(|e| format!("{} ({}): {e}", ep.name, ep.policy)))
        .collect();
    assert!(failures.is_empty(), "{} episodes differ:\\n{}", failures.len(), failures.join("\\n"));
}

/// The recorded set exercises every ending: terminations by angle and by position, 500-step
/// truncations, and the termination at exactly step 500.
#[test]
fn reference_set_covers_every_ending() {
    let ends = |f: &dyn Fn(&Episode) -> bool| EPISODES.iter().filter(|e| f(e)).count();
    let last = |e: &Episode| e.states.last().map(|s| s.1).unwrap_or(e.initial);
    assert!(ends(&|e| e.truncated && !e.terminated && e.actions.len() == 500) >= 5);
    assert!(ends(&|e| e.terminated && last(e)[2].abs() > THETA_THRESHOLD_RAD) >= 5);
    assert!(ends(&|e| e.terminated && last(e)[0].abs() > X_THRESHOLD_M) >= 1);
    assert!(ends(&|e| e.terminated && e.truncated && e.actions.len() == 500) == 1);
}
"""


def check_numpy_trig_is_libm(n=200_000):
    """Rust's f64::cos/sin call the platform libm, as Python's math.cos/sin do; numpy may use
    its own SIMD kernels. Bit-exact replay needs numpy to agree with libm here."""
    xs = np.random.default_rng(0).uniform(-0.5, 0.5, n)
    for x in xs:
        xf = np.float64(x)
        assert np.cos(xf) == math.cos(x) and np.sin(xf) == math.sin(x), x


def main():
    check_numpy_trig_is_libm()
    env = gymnasium.make("CartPole-v1")
    recorded = []
    for name, initial, kind, seed in episodes():
        recorded.append(((name, initial, kind, seed), run(env, initial, kind, seed)))
    recorded.append(terminates_at_500(env))
    for (name, _, _, _), (actions, _, rewards, _, _) in recorded:
        assert 1 <= len(actions) <= 500, name
    lines = [
        HEADER.format(
            gym=gymnasium.__version__,
            np=np.__version__,
            py=platform.python_version(),
            machine=f"{platform.machine()} {platform.system()}, {' '.join(platform.libc_ver())}",
            keep=KEEP_EVERY_STATE_UP_TO,
            stride=STRIDE,
        ),
        "use splitwise_env::Env;",
        "use splitwise_env::cartpole::{CartPole, THETA_THRESHOLD_RAD, X_THRESHOLD_M};",
        TEST,
        "#[rustfmt::skip]",
        "const EPISODES: &[Episode] = &[",
    ]
    for (name, initial, kind, _), result in recorded:
        lines += episode_source(name, initial, kind, result)
    lines.append("];")
    OUT.write_text("\n".join(lines) + "\n")
    if shutil.which("rustfmt"):  # the test code is formatted; the data is #[rustfmt::skip]
        subprocess.run(["rustfmt", "--edition", "2024", str(OUT)], check=True)
    lengths = [len(r[0]) for _, r in recorded]
    print(f"wrote {OUT} ({len(recorded)} episodes, lengths {lengths})", file=sys.stderr)


if __name__ == "__main__":
    main()
