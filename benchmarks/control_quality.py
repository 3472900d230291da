"""PPO vs SPPO with and without reward noise, plus the ablation "PPO with ent_coef and vf_coef divided by
(alpha + beta*|Z|)", over envs x seeds at a stated budget; writes a table (Markdown + JSON) and curves.

    python benchmarks/control_quality.py --envs LunarLander-v3,Hopper-v5,HalfCheetah-v5,ALE/MsPacman-v5 \
        --seeds 1,2,3 --steps 1000000 --atari-steps 500000 --workers 2

Continuous envs use 11 action bins per dimension for every algorithm (the symmetric loss needs pi(a|s)).
Noise: Gaussian sigma 0.05 (continuous envs), sign flip p 0.1 (Atari). SPPO: alpha 0.5, beta 1, Z -1.
Atari runs put the Nature CNN under bfloat16 autocast (`bf16=True`, the same for every variant; `--atari-fp32`
turns it off; CPUs without native bf16 run float32). Three measures per run: the evaluation return at the end (noiseless env; greedy actions, sampled
on Atari where a greedy policy loops in place), the mean true (noiseless) return of the last 20 training
episodes, and the mean true return over all training episodes (the area under the learning curve, which is
less noisy than either). Stopped runs resume: rerun the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from control.config import TrainConfig  # noqa: E402
from control.device import native_bf16  # noqa: E402
from control.envs import is_atari  # noqa: E402
from control.plot import plot_runs  # noqa: E402
from control.sweep import run_sweep  # noqa: E402

ALPHA, BETA, Z = 0.5, 1.0, -1.0


def variants(env_id: str, noisy: bool) -> dict[str, dict]:
    noise = ({"reward_flip_p": 0.1} if is_atari(env_id) else {"reward_noise": 0.05}) if noisy else {}
    bins = {} if is_atari(env_id) or env_id in ("LunarLander-v3", "CartPole-v1") else {"discretize_bins": 11}
    scale = ALPHA + BETA * abs(Z)
    out = {
        "ppo": dict(algo="ppo", **noise, **bins),
        "sppo": dict(algo="sppo", alpha=ALPHA, beta=BETA, z=Z, **noise, **bins),
    }
    if noisy:
        ent = 0.01 if is_atari(env_id) else 0.0
        out["ppo-rescaled"] = dict(algo="ppo", vf_coef=0.5 / scale, ent_coef=ent / scale, **noise, **bins)
    return out


def training_returns(run: Path) -> np.ndarray:
    """True returns of a run's training episodes in order (episodes.csv logs them before any reward noise)."""
    rows = [r for r in (run / "episodes.csv").read_text().splitlines() if r]
    return np.array([float(r.split(",")[1]) for r in rows])


def last_training_return(run: Path, episodes: int = 20) -> float:
    returns = training_returns(run)
    return float(returns[-episodes:].mean()) if len(returns) else float("nan")


def area_under_curve(run: Path) -> float:
    """Mean true return over the whole run, episodes weighted by the steps they took (every step counts once)."""
    rows = [r.split(",") for r in (run / "episodes.csv").read_text().splitlines() if r]
    if not rows:
        return float("nan")
    returns, lengths = np.array([float(r[1]) for r in rows]), np.array([float(r[2]) for r in rows])
    return float((returns * lengths).sum() / lengths.sum())


def welch_difference(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """mean(a) - mean(b) with the half-width of its 95% Welch interval and the two-sided p-value."""
    from scipy import stats

    diff = float(np.mean(a) - np.mean(b))
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    if se == 0:
        return diff, 0.0, 1.0 if diff == 0 else 0.0
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, dof) * se)
    return diff, half, float(2 * stats.t.sf(abs(diff) / se, dof))


COMPARISONS = (("sppo", "ppo"), ("ppo-rescaled", "ppo"), ("sppo", "ppo-rescaled"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envs", default="LunarLander-v3,Hopper-v5")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=30000)
    parser.add_argument(
        "--atari-steps", type=int, default=None, help="budget of Atari runs (default --steps)"
    )
    parser.add_argument("--atari-fp32", action="store_true", help="Atari without bf16 autocast")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--root", default="runs/control-quality")
    parser.add_argument("--out", default="benchmarks/results/control_quality")
    args = parser.parse_args()
    root, configs, labels = Path(args.root), [], {}
    bf16_here, why = native_bf16(torch.device("cpu"))
    if not bf16_here and not args.atari_fp32 and any(is_atari(e) for e in args.envs.split(",")):
        print(f"Atari runs in float32: {why}", flush=True)
    for env_id in args.envs.split(","):
        for noisy in (False, True):
            for name, kw in variants(env_id, noisy).items():
                for seed in map(int, args.seeds.split(",")):
                    tag = f"{name}-{env_id.replace('/', '_')}-{'noisy' if noisy else 'clean'}-s{seed}"
                    atari = is_atari(env_id)
                    steps = (args.atari_steps or args.steps) if atari else args.steps
                    cfg = TrainConfig(
                        env_id=env_id,
                        seed=seed,
                        eval_episodes=5 if atari else 10,
                        total_steps=steps,
                        checkpoint_every=max(
                            steps // 10, 1
                        ),  # a stopped benchmark loses at most 10% of a run
                        device="cpu",
                        bf16=atari and not args.atari_fp32 and bf16_here,
                        out_dir=str(root / tag),
                        **kw,
                    )
                    configs.append(cfg)
                    labels[cfg.out_dir] = (env_id, "noisy" if noisy else "clean", name)
    configs.sort(key=lambda c: not is_atari(c.env_id))  # longest runs first: the two workers finish together
    summaries = run_sweep(configs, args.workers)
    table: dict[tuple, list[float]] = {}
    train_table: dict[tuple, list[float]] = {}
    auc_table: dict[tuple, list[float]] = {}
    for cfg, s in zip(configs, summaries, strict=True):
        key = labels[cfg.out_dir]
        table.setdefault(key, []).append(s["eval_mean_return"])
        train_table.setdefault(key, []).append(last_training_return(Path(cfg.out_dir)))
        auc_table.setdefault(key, []).append(area_under_curve(Path(cfg.out_dir)))
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "env": e,
            "noise": n,
            "algo": a,
            "mean": float(np.mean(v)),
            "std": float(np.std(v)),
            "seeds": v,
            "train_mean": float(np.mean(train_table[(e, n, a)])),
            "train_std": float(np.std(train_table[(e, n, a)])),
            "train_seeds": train_table[(e, n, a)],
            "auc_mean": float(np.mean(auc_table[(e, n, a)])),
            "auc_std": float(np.std(auc_table[(e, n, a)])),
            "auc_seeds": auc_table[(e, n, a)],
        }
        for (e, n, a), v in sorted(table.items())
    ]
    (out / "table.json").write_text(json.dumps(rows, indent=1))
    lines = [
        f"budget {args.steps} steps (Atari {args.atari_steps or args.steps}), seeds {args.seeds}",
        "",
        "| env | noise | algo | final eval return (greedy; Atari sampled) | last-20 training episodes | mean over training |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['env']} | {r['noise']} | {r['algo']} | {r['mean']:.1f} +- {r['std']:.1f} "
        f"| {r['train_mean']:.1f} +- {r['train_std']:.1f} | {r['auc_mean']:.1f} +- {r['auc_std']:.1f} |"
        for r in rows
    ]
    lines += [
        "",
        "Differences of the mean over training (Welch 95% interval, p-value; 3 seeds make these wide):",
        "",
        "| env | noise | comparison | difference | 95% interval | p |",
        "|---|---|---|---|---|---|",
    ]
    for (e, n, a), auc in sorted(auc_table.items()):
        for x, y in COMPARISONS:
            if a == x and (e, n, y) in auc_table:
                diff, half, p = welch_difference(auc, auc_table[(e, n, y)])
                lines.append(
                    f"| {e} | {n} | {x} - {y} | {diff:+.1f} | [{diff - half:+.1f}, {diff + half:+.1f}] | {p:.2f} |"
                )
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    for env_id in args.envs.split(","):
        runs = [Path(c.out_dir) for c in configs if c.env_id == env_id]
        plot_runs(runs, out / f"curves-{env_id.replace('/', '_')}.png")


if __name__ == "__main__":
    main()
