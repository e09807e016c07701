#!/usr/bin/env python3
"""Stable-Baselines3 PPO wall-clock time to solve CartPole-v1, for comparison with
agents/examples/cartpole_seeds.rs.

Hyperparameters: RL Baselines3 Zoo `hyperparams/ppo.yml`, entry `CartPole-v1` (DLR-RM/
rl-baselines3-zoo, read at commit 00128b5d46d497b772f3bd891ae9f520919e8971): n_envs 8,
n_timesteps 1e5, MlpPolicy, n_steps 32, batch_size 256, gae_lambda 0.8, gamma 0.98, n_epochs 20,
ent_coef 0.0, learning_rate lin_0.001, clip_range lin_0.2. Everything else is SB3's default
(vf_coef 0.5, max_grad_norm 0.5, net_arch pi=[64, 64] vf=[64, 64] tanh, Adam eps 1e-5).
`lin_x` is the zoo's `linear_schedule(x)`: `progress_remaining * x`, progress over
`learn(total_timesteps=1e5)`.

Protocol (the same as cartpole_seeds.rs): per seed, train for at most 100k env steps; every 2048
env steps evaluate 20 deterministic episodes (one on each of 20 CartPole-v1 copies, stepped as one
vector env) and stop at the first mean return >= 475 (Gymnasium's CartPole-v1 reward_threshold).
The evaluation happens at the start of the next rollout, i.e. after the PPO update that brought the
step count to a multiple of 2048, as in the Rust example, which evaluates right after `update()`;
SB3's stock EvalCallback evaluates inside the rollout, one update earlier. After the last update of
the budget one final evaluation runs (the Rust example does the same).

Clock: `wall_s` starts before the training and evaluation vector envs are built and the PPO model
is constructed, and stops when `learn()` returns; it includes every periodic evaluation. It excludes
interpreter start-up and imports (the Rust clock likewise starts inside `main`, after process start).
`eval_s` is the evaluation part of it, `rollout_s` the time inside `collect_rollouts` (env stepping
and acting: SB3's `on_rollout_start` to `on_rollout_end`) and `update_s` the remainder
(`train()`, logging and model construction).

Prints one JSON object per seed, then a summary JSON with the medians and library versions.

Run by scripts/bench_ppo_cartpole.sh (which creates the venv), or directly:
    python3 scripts/bench_sb3_cartpole.py [--seeds 0,1,2,3,4] [--threads N]
"""

import argparse
import json
import os
import platform
import statistics
import time

import gymnasium
import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy

ENV_ID = "CartPole-v1"
# Gymnasium's CartPole-v1 `reward_threshold`.
SOLVED_RETURN = 475.0
EVAL_EPISODES = 20
EVAL_EVERY = 2048
BUDGET = 100_000
# Added to the seed for the evaluation envs, so they do not replay the training envs' starts.
EVAL_SEED_OFFSET = 1_000


def linear_schedule(initial_value):
    """RL Zoo's `lin_<x>` (rl_zoo3/utils.py `linear_schedule`): decays linearly to 0."""

    def schedule(progress_remaining):
        return progress_remaining * initial_value

    return schedule


def zoo_hyperparameters():
    """RL Zoo hyperparams/ppo.yml `CartPole-v1`, less n_envs/n_timesteps/policy (used below)."""
    return dict(
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear_schedule(0.001),
        clip_range=linear_schedule(0.2),
    )


ZOO_N_ENVS = 8


class SolveCallback(BaseCallback):
    """Evaluates every EVAL_EVERY steps after the update and stops training once solved."""

    def __init__(self, eval_env):
        super().__init__(verbose=0)
        self.eval_env = eval_env
        self.next_eval = EVAL_EVERY
        self.last_eval_step = None
        self.last_eval_return = float("nan")
        self.solved_at = None
        self.n_evals = 0
        self.eval_s = 0.0
        self.rollout_s = 0.0
        self._rollout_started = None

    def _evaluate(self):
        t = time.perf_counter()
        returns, _ = evaluate_policy(
            self.model,
            self.eval_env,
            n_eval_episodes=EVAL_EPISODES,
            deterministic=True,
            return_episode_rewards=True,
        )
        self.eval_s += time.perf_counter() - t
        self.n_evals += 1
        self.last_eval_step = self.num_timesteps
        self.last_eval_return = float(np.mean(returns))
        if self.last_eval_return >= SOLVED_RETURN:
            self.solved_at = self.num_timesteps

    def _on_rollout_start(self):
        # Called at the top of collect_rollouts, i.e. after the previous train(): the policy
        # evaluated at step N has been updated on all N steps.
        if self.solved_at is None and self.num_timesteps >= self.next_eval:
            self.next_eval += EVAL_EVERY
            self._evaluate()
        self._rollout_started = time.perf_counter()

    def _on_step(self):
        # Returning False ends collect_rollouts and learn(); it is checked after the first env
        # step of the rollout that follows the solving evaluation (8 env steps, not counted).
        return self.solved_at is None

    def _on_rollout_end(self):
        self.rollout_s += time.perf_counter() - self._rollout_started

    def _on_training_end(self):
        # The budget ran out: one last evaluation after the final update, as the Rust example.
        if self.solved_at is None and self.last_eval_step != self.num_timesteps:
            self._evaluate()


def run(seed):
    start = time.perf_counter()
    env = make_vec_env(ENV_ID, n_envs=ZOO_N_ENVS, seed=seed)
    eval_env = make_vec_env(ENV_ID, n_envs=EVAL_EPISODES, seed=seed + EVAL_SEED_OFFSET)
    model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **zoo_hyperparameters())
    callback = SolveCallback(eval_env)
    model.learn(total_timesteps=BUDGET, callback=callback)
    wall_s = time.perf_counter() - start
    # The step count at the solving evaluation; `num_timesteps` has one more vector step in it.
    steps = callback.solved_at if callback.solved_at is not None else model.num_timesteps
    train_s = wall_s - callback.eval_s
    env.close()
    eval_env.close()
    return {
        "seed": seed,
        "solved": callback.solved_at is not None,
        "solved_at": callback.solved_at,
        "last_eval_return": callback.last_eval_return,
        "steps": steps,
        "wall_s": wall_s,
        "sps": steps / wall_s,
        "train_sps": steps / train_s,
        "rollout_s": callback.rollout_s,
        "update_s": train_s - callback.rollout_s,
        "eval_s": callback.eval_s,
        "n_evals": callback.n_evals,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch intra-op CPU threads (default: the machine's cores)",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(args.threads)

    runs = []
    for seed in seeds:
        r = run(seed)
        runs.append(r)
        print(json.dumps(r), flush=True)

    solved = [r for r in runs if r["solved"]]
    summary = {
        "summary": True,
        "solved": len(solved),
        "seeds": len(runs),
        # Medians over the seeds that solved; `solved` < `seeds` makes them optimistic.
        "median_wall_s": statistics.median(r["wall_s"] for r in solved) if solved else None,
        "median_steps": statistics.median(r["steps"] for r in solved) if solved else None,
        "median_sps": statistics.median(r["sps"] for r in runs),
        "median_train_sps": statistics.median(r["train_sps"] for r in runs),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "stable_baselines3": stable_baselines3.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "hyperparameters": {
            k: (v if not callable(v) else f"lin_{v(1.0)}") for k, v in zoo_hyperparameters().items()
        }
        | {"n_envs": ZOO_N_ENVS, "n_timesteps": BUDGET},
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
