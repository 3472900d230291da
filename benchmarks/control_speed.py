"""Environment steps per second of our PPO versus Stable-Baselines3's PPO, same hyperparameters, one run.

    python benchmarks/control_speed.py --hopper-steps 20480 --pong-steps 8192

Hopper-v5: 1 env, 2048 steps per rollout, 10 epochs, minibatch 64, 64x64 tanh MLPs, observation and reward
normalisation (SB3: VecNormalize). ALE/Pong-v5: 8 envs, 128 steps, 4 epochs, minibatch 256, Nature CNN.
Also the bare simulator with random actions. Writes benchmarks/results/control_speed.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402

from control.config import TrainConfig  # noqa: E402
from control.envs import EnvConfig, make_vec_env  # noqa: E402
from control.train import train  # noqa: E402


def ours(env_id: str, steps: int, **kw) -> float:
    summary = train(TrainConfig(algo="ppo", env_id=env_id, total_steps=steps, out_dir=tempfile.mkdtemp(),
                                eval_episodes=0, **kw))
    return summary["steps_per_s"]


def sb3(env_id: str, steps: int, atari: bool) -> float:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    torch.set_num_threads(1)
    if atari:
        import ale_py

        gym.register_envs(ale_py)
        env = VecFrameStack(make_atari_env(env_id, n_envs=8, seed=1), 4)
        model = PPO("CnnPolicy", env, n_steps=128, n_epochs=4, batch_size=256, learning_rate=2.5e-4, clip_range=0.1,
                    ent_coef=0.01, vf_coef=0.5, device="cpu", seed=1)
    else:
        env = VecNormalize(sb3_vec(env_id, n_envs=1, seed=1))
        model = PPO("MlpPolicy", env, n_steps=2048, n_epochs=10, batch_size=64, device="cpu", seed=1)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    return steps / (time.perf_counter() - t0)


def bare(env_id: str, steps: int, num_envs: int) -> float:
    envs = make_vec_env(EnvConfig(env_id=env_id), num_envs, 0)
    envs.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps // num_envs):
        envs.step(envs.action_space.sample())
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hopper-steps", type=int, default=20480)
    parser.add_argument("--pong-steps", type=int, default=8192)
    parser.add_argument("--out", default="benchmarks/results/control_speed.json")
    args = parser.parse_args()
    result = {
        "hopper": {"bare_env": bare("Hopper-v5", 5000, 1), "ours": ours("Hopper-v5", args.hopper_steps),
                   "sb3": sb3("Hopper-v5", args.hopper_steps, False), "steps": args.hopper_steps},
        "pong": {"bare_env": bare("ALE/Pong-v5", 2048, 8), "ours": ours("ALE/Pong-v5", args.pong_steps),
                 "sb3": sb3("PongNoFrameskip-v4", args.pong_steps, True), "steps": args.pong_steps},
    }
    for v in result.values():
        v["ratio"] = v["ours"] / v["sb3"]
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
