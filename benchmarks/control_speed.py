"""Environment steps per second of our PPO versus Stable-Baselines3's PPO, same hyperparameters, one run.

    python benchmarks/control_speed.py --hopper-steps 40960 --pong-steps 16384 --threads 1 --repeats 3

Hopper-v5: 1 env, 2048 steps per rollout, 10 epochs, minibatch 64, 64x64 tanh MLPs, observation and reward
normalisation (SB3: VecNormalize). ALE/Pong-v5: 8 envs, 128 steps, 4 epochs, minibatch 256, Nature CNN.
Also the bare simulator with random actions, the mean return of the last training episodes of both (returns
should match: same algorithm, same budget), and where our time goes (env step, per-step policy, update).
On Pong ours also runs with `bf16=True` (the Nature CNN under bfloat16 autocast; SB3 has no such setting, so
the like-for-like ratio is the float32 one). Both libraries get the same number of torch threads; each measurement runs in its own process, ours and
SB3 alternate, and the medians over `--repeats` pairs are reported. Writes benchmarks/results/control_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
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

LAST_EPISODES = 20


def ours(env_id: str, steps: int, threads: int, bf16: bool = False) -> dict:
    out = tempfile.mkdtemp()
    summary = train(
        TrainConfig(
            algo="ppo",
            env_id=env_id,
            total_steps=steps,
            out_dir=out,
            eval_episodes=0,
            threads=threads,
            device="cpu",
            bf16=bf16,
        )
    )
    rows = (Path(out) / "episodes.csv").read_text().split()
    returns = [float(r.split(",")[1]) for r in rows[-LAST_EPISODES:]]
    seconds = {k: round(v, 2) for k, v in summary["seconds"].items()}
    return {
        "steps_per_s": summary["steps_per_s"],
        "last_returns": sum(returns) / max(len(returns), 1),
        "seconds": seconds,
    }


def sb3(env_id: str, steps: int, atari: bool, threads: int) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec
    from stable_baselines3.common.vec_env import VecFrameStack, VecNormalize

    torch.set_num_threads(threads)
    if atari:
        import ale_py

        gym.register_envs(ale_py)
        env = VecFrameStack(make_atari_env(env_id, n_envs=8, seed=1), 4)
        model = PPO(
            "CnnPolicy",
            env,
            n_steps=128,
            n_epochs=4,
            batch_size=256,
            learning_rate=2.5e-4,
            clip_range=0.1,
            ent_coef=0.01,
            vf_coef=0.5,
            device="cpu",
            seed=1,
        )
    else:
        env = VecNormalize(sb3_vec(env_id, n_envs=1, seed=1))
        model = PPO("MlpPolicy", env, n_steps=2048, n_epochs=10, batch_size=64, device="cpu", seed=1)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    rate = steps / (time.perf_counter() - t0)
    returns = [e["r"] for e in list(model.ep_info_buffer)[-LAST_EPISODES:]]
    return {"steps_per_s": rate, "last_returns": sum(returns) / max(len(returns), 1)}


def bare(env_id: str, steps: int, num_envs: int) -> dict:
    envs = make_vec_env(EnvConfig(env_id=env_id), num_envs, 0)
    envs.reset(seed=0)
    t0 = time.perf_counter()
    for _ in range(steps // num_envs):
        envs.step(envs.action_space.sample())
    rate = steps / (time.perf_counter() - t0)
    envs.close()
    return {"steps_per_s": rate}


SETTINGS = {
    "hopper": ("Hopper-v5", "Hopper-v5", 1, 5000),
    "pong": ("ALE/Pong-v5", "PongNoFrameskip-v4", 8, 2048),
}


def measure(what: str, env: str, steps: int, threads: int) -> dict:
    """One measurement in a fresh process, so allocator state or threads of one library never slow the other."""
    cmd = [
        sys.executable,
        __file__,
        "--one",
        what,
        "--env",
        env,
        "--steps",
        str(steps),
        "--threads",
        str(threads),
    ]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def one(what: str, env: str, steps: int, threads: int) -> dict:
    ours_id, sb3_id, num_envs, bare_steps = SETTINGS[env]
    torch.set_num_threads(threads)
    if what == "bare":
        return bare(ours_id, bare_steps, num_envs)
    if what in ("ours", "ours_bf16"):
        return ours(ours_id, steps, threads, bf16=what == "ours_bf16")
    return sb3(sb3_id, steps, env == "pong", threads)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hopper-steps", type=int, default=40960)
    parser.add_argument("--pong-steps", type=int, default=16384)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both libraries")
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating ours/SB3 pairs; medians are reported"
    )
    parser.add_argument("--out", default="benchmarks/results/control_speed.json")
    parser.add_argument("--one", choices=("bare", "ours", "ours_bf16", "sb3"), help=argparse.SUPPRESS)
    parser.add_argument("--env", choices=tuple(SETTINGS), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.env, args.steps, args.threads)))
        return
    result: dict = {"threads": args.threads, "repeats": args.repeats}
    for env, steps in (("hopper", args.hopper_steps), ("pong", args.pong_steps)):
        kinds = ["ours", "sb3"] + (["ours_bf16"] if env == "pong" else [])
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        for i in range(args.repeats):
            for what in kinds if i % 2 == 0 else kinds[::-1]:
                runs[what].append(measure(what, env, steps, args.threads))
        median = {k: statistics.median(r["steps_per_s"] for r in v) for k, v in runs.items()}
        result[env] = {
            "steps": steps,
            "bare_env": measure("bare", env, steps, args.threads)["steps_per_s"],
            **median,
            "ratio": median["ours"] / median["sb3"],
            "runs": runs,
        }
        if "ours_bf16" in median:
            result[env]["ratio_bf16"] = median["ours_bf16"] / median["sb3"]
        print(env, {k: v for k, v in result[env].items() if k != "runs"}, flush=True)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
