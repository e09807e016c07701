"""RLlib PPO on splitwise's native vector env, with action masking.

RLlib's new API stack builds one ``SplitwiseVectorEnv`` per env runner through the vector entry
point (``gym_env_vectorize_mode="vector_entry_point"``: the members are stepped in Rust in one
call, not by RLlib's per-env loop), with next-step autoreset (what RLlib's env runner expects)
and the ``{"observations", "action_mask"}`` dict observations that RLlib's example
``ActionMaskingTorchRLModule`` reads, so the policy never samples a split that does not fit the
edge device's memory.

    pip install "ray[rllib]" torch python/dist/splitwise_gym-*.whl
    python examples/ray/rllib_masked_ppo.py --iterations 20

Hyperparameters follow configs/ppo-jetson-layer-split.toml where RLlib has the same knob (γ 0,
λ 0.95, lr 3e-4, clip 0.2, entropy 0.01, 10 epochs, minibatch 256, 64-64 tanh); the rest is
RLlib's default. It prints each iteration's mean episode return (the negated sum of Δ + V·p over
a 500-slot episode) and, at the end, the trained policy's capture of the headroom on the held-out
episodes through ``splitwise_gym.evaluate`` (greedy legal action).
"""

from __future__ import annotations

import argparse

import numpy as np

import splitwise_gym
from splitwise_gym import SplitwiseVectorEnv, VectorActionMaskObservation

SCENARIO = "jetson-llama7b-lte"
OPTIONS = {"mode": "layer-split", "episode_slots": 500}


def make_vector_env(config: dict):
    """RLlib's env creator: ``config`` carries ``num_envs`` (the vector entry point's call)."""
    env = SplitwiseVectorEnv(
        config.get("scenario", SCENARIO),
        num_envs=config["num_envs"],
        autoreset_mode="NextStep",
        **config.get("options", OPTIONS),
    )
    return VectorActionMaskObservation(env)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--num-envs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=10)
    args = p.parse_args(argv)

    import ray
    import torch
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
    from ray.tune.registry import register_env

    ray.init(ignore_reinit_error=True, include_dashboard=False)
    register_env("splitwise-masked", make_vector_env)
    config = (
        PPOConfig()
        .environment("splitwise-masked", env_config={"scenario": SCENARIO, "options": OPTIONS})
        .env_runners(num_env_runners=0, num_envs_per_env_runner=args.num_envs, gym_env_vectorize_mode="vector_entry_point")
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=ActionMaskingTorchRLModule,
                model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh", "head_fcnet_hiddens": []},
            )
        )
        .training(
            gamma=0.0, lambda_=0.95, lr=3e-4, clip_param=0.2, entropy_coeff=0.01, num_epochs=10,
            minibatch_size=256, train_batch_size_per_learner=2048,
        )
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    for i in range(args.iterations):
        result = algo.train()
        ret = result["env_runners"].get("episode_return_mean", float("nan"))
        done = f"mean episode return {ret:.1f}" if np.isfinite(ret) else "no episode ended in this iteration"
        print(f"iteration {i + 1}: env steps {int(result['num_env_steps_sampled_lifetime'])}, {done}")

    module = algo.get_module()

    def greedy(obs, mask):
        batch = {Columns.OBS: {"observations": torch.as_tensor(obs[None]), "action_mask": torch.as_tensor(mask[None].astype(np.float32))}}
        with torch.no_grad():
            logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS][0].numpy()
        return int(np.argmax(np.where(mask, logits, -np.inf)))

    metrics = splitwise_gym.evaluate(SCENARIO, {"rllib-ppo": greedy}, episodes=args.eval_episodes, seed=7919, **OPTIONS)
    c = splitwise_gym.capture(metrics, "rllib-ppo")
    print(f"held-out capture of the headroom: {c['mean']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}]" if c else "no headroom section")
    algo.stop()
    ray.shutdown()
    return metrics


if __name__ == "__main__":
    main()
