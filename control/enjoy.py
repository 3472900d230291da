"""Watch a trained run: its greedy (or sampled) episodes rendered on screen, or recorded as an MP4/GIF
(`python -m control enjoy RUN --video FILE`), as SB3-zoo's and CleanRL's users expect."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from align.user_errors import UserError
from control.evaluate import load_agent, load_run_config
from control.run import EVAL_SEED_OFFSET

VIDEO_SUFFIXES = (".mp4", ".gif")


def _headless() -> bool:
    return not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")


def enjoy(
    run: Path,
    episodes: int = 1,
    video: Path | None = None,
    greedy: bool = True,
    seed: int | None = None,
    fps: int | None = None,
    max_steps: int = 5_000,
) -> dict[str, Any]:
    """Play `episodes` episodes of the run's policy on the noiseless env; with `video`, write their frames to
    it (MP4 through imageio-ffmpeg, or GIF). Returns the episodes' returns and lengths."""
    if video is not None and Path(video).suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--video {video}: the file must end in .mp4 or .gif")
    if video is None and _headless():
        raise UserError("no display to watch on: pass --video FILE (.mp4 or .gif) to record the episodes")
    if video is not None and _headless():
        os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo renders off-screen without a display
    import torch

    from control.envs import make_env

    cfg = load_run_config(run)
    agent, norm, step = load_agent(run, cfg)
    env = make_env(cfg.env_config(), 0, evaluation=True, render_mode="rgb_array" if video else "human")()
    base = cfg.seed + EVAL_SEED_OFFSET if seed is None else seed
    frames: list[np.ndarray] = []
    returns, lengths = [], []
    with torch.random.fork_rng():
        torch.manual_seed(base)
        for episode in range(episodes):
            obs, _ = env.reset(seed=base + episode)
            total, length, done = 0.0, 0, False
            while not done and length < max_steps:
                if video is not None:
                    frames.append(np.asarray(env.render()))
                x = np.asarray(obs)[None]
                x = norm.apply_obs(x) if norm is not None else x
                x = torch.as_tensor(x, dtype=None if x.dtype == np.uint8 else torch.float32)
                with torch.no_grad():
                    sample, *_, best = agent.distribution_terms(x)
                action = (best if greedy else sample)[0].numpy()
                obs, reward, terminated, truncated, _ = env.step(action if action.ndim else int(action))
                total, length, done = total + float(reward), length + 1, terminated or truncated
            returns.append(total)
            lengths.append(length)
    rate = fps or env.metadata.get("render_fps") or 30
    env.close()
    if video is not None:
        write_video(Path(video), frames, int(rate))
    return {
        "run": str(run),
        "global_step": step,
        "greedy": greedy,
        "returns": returns,
        "lengths": lengths,
        "video": str(video) if video else None,
    }


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    """Frames (H, W, 3 uint8) to an MP4 (imageio-ffmpeg, H.264) or a GIF."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
        return
    try:
        writer = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1)
    except (ImportError, ValueError) as e:
        raise UserError(
            f"--video {path}: MP4 needs imageio-ffmpeg (pip install imageio-ffmpeg), or use .gif ({e})"
        ) from None
    with writer:
        for frame in frames:
            writer.append_data(frame)
