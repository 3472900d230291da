"""PPO vs SPPO (our `PPOTrainer`) vs TRL's `GRPOTrainer` and `RLOOTrainer` on the offline IMDB setup, several
seeds at an equal number of generated samples.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/sppo_rlhf_imdb.py --seeds 42,43,44,45,46 --iterations 20

Same policy (the IMDB demo's tiny GPT-2 language model of our sample reviews), same reward (the demo's tiny
DistilBERT classifier's POSITIVE logit of prompt + continuation), same prompts and the same number of samples
per round (32: PPO/SPPO 32 prompts x 1 sample as in the paper, GRPO/RLOO 8 prompts x 4 samples since they need
groups), 32 new tokens, top-k 50, lr 3e-4, 16 optimizer steps per round for every method (ours: 4 epochs x 4
minibatches of 8; TRL: steps_per_generation 4 x num_iterations 4, batch 8), KL coefficient 0.001 (ours: per
token in the reward, as the paper; GRPO: k3 in the loss; RLOO: in the reward). Every final policy is evaluated
the same way on 64 held-out prompts (sampled, fixed seed): classifier reward, exact KL to the initial model,
perplexity under it. Each (method, seed) runs in its own process and writes its result; a stopped benchmark
resumes with the runs it lacks. Writes `table.md`, `results.json` and `curves.png` to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

METHODS = ("ppo", "sppo", "grpo", "rloo")
PROMPTS, GROUP, NEW_TOKENS, LR, KL, STEPS = 32, 4, 32, 3e-4, 0.001, 16
EVAL_PROMPTS = 64


def setup(out: Path):
    """The demo's tiny models (trained once, reused) and the prompts: (run, policy, classifier, train, held_out)."""
    from align.recipe_config import load_sections
    from align.rlhf.config import EvalSettings
    from align.rlhf.imdb import ImdbRun
    from align.rlhf.imdb_data import imdb_prompts

    sys.path.insert(0, str(ROOT / "recipes"))
    from sppo_imdb import CONFIG_DIR, SECTIONS

    cfg = load_sections("sppo_imdb_demo", SECTIONS, [], CONFIG_DIR)
    imdb = replace(
        cfg["imdb"],
        output_dir=str(out / "models"),
        eval=EvalSettings(prompts=EVAL_PROMPTS, batch_size=EVAL_PROMPTS),
    )
    ppo = replace(
        cfg["ppo"],
        prompts_per_iteration=PROMPTS,
        minibatch_size=8,
        ppo_epochs=4,
        learning_rate=LR,
        kl_coef=KL,
    )
    ppo = replace(ppo, sampling=replace(ppo.sampling, num_samples=1, max_new_tokens=NEW_TOKENS, top_k=50))
    run = ImdbRun(imdb, ppo, cfg["lm"], cfg["classifier"])
    policy = run.policy_path()
    classifier = run.classifier_path(policy)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(policy)
    train = imdb_prompts(run.train_reviews, tok, imdb.prompt_tokens, imdb.prompt_fraction)
    held_out = imdb_prompts(run.val_reviews, tok, imdb.prompt_tokens, imdb.prompt_fraction)[:EVAL_PROMPTS]
    return run, policy, classifier, train, held_out


def scorer_for(classifier: str):
    from align.rlhf.rewards import ClassifierScore, sentiment_score

    return sentiment_score(ClassifierScore(classifier, "POSITIVE", "logit"), include_prompt=True)


def run_ours(out: Path, method: str, seed: int, iterations: int) -> dict:
    run, policy, classifier, train, held_out = setup(out)
    run.root = out / "runs" / method  # seed folders go under the method
    run.ppo = replace(run.ppo, policy_loss=method)
    result = run.rl_seed(seed, policy, iterations, train, held_out, scorer_for(classifier))
    from align.rlhf.run import read_metrics

    curve = [m["reward"] for m in read_metrics(run.seed_dir(seed) / "ppo" / "metrics.jsonl")]
    return {**result, "curve": curve, "samples": PROMPTS * iterations}


def run_trl(out: Path, method: str, seed: int, iterations: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from align.models.loading import LoadedPolicy
    from align.rlhf.metrics import evaluate_policy

    _, policy_path, classifier, train, held_out = setup(out)
    score = scorer_for(classifier)
    by_prompt = {p.prompt: p for p in train}
    rounds: list[tuple[int, float]] = []

    def reward(prompts, completions, **kwargs):
        values = score([by_prompt[p] for p in prompts], list(completions))
        rounds.append((len(values), sum(values) / len(values)))
        return values

    tok = AutoTokenizer.from_pretrained(policy_path)
    tok.padding_side = "left"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32)
    common = dict(
        output_dir=str(out / "runs" / method / f"seed{seed}"),
        per_device_train_batch_size=PROMPTS // GROUP,
        num_generations=GROUP,
        steps_per_generation=GROUP,
        num_iterations=STEPS // GROUP,
        max_completion_length=NEW_TOKENS,
        max_steps=iterations * STEPS,
        learning_rate=LR,
        beta=KL,
        top_k=50,
        temperature=1.0,
        disable_dropout=True,
        logging_steps=STEPS,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        save_strategy="no",
        seed=seed,
        disable_tqdm=True,
    )
    dataset = Dataset.from_dict({"prompt": [p.prompt for p in train]})
    if method == "grpo":
        from trl import GRPOConfig, GRPOTrainer

        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward,
            args=GRPOConfig(**common),
            train_dataset=dataset,
            processing_class=tok,
        )
    else:
        from trl import RLOOConfig, RLOOTrainer

        trainer = RLOOTrainer(
            model=model,
            reward_funcs=reward,
            args=RLOOConfig(**common),
            train_dataset=dataset,
            processing_class=tok,
        )
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    samples = sum(n for n, _ in rounds)
    trained = LoadedPolicy(trainer.model.eval(), tok, tok, False, policy_path)
    reference = AutoModelForCausalLM.from_pretrained(policy_path, dtype=torch.float32).eval()
    result = evaluate_policy(
        trained,
        held_out,
        score,
        NEW_TOKENS,
        reference=reference,
        top_k=50,
        batch_size=EVAL_PROMPTS,
        seed=seed,
    )
    result.pop("samples")
    return {
        "seed": seed,
        "iterations": iterations,
        "train_seconds": seconds,
        **result,
        "curve": [m for _, m in rounds],
        "samples": samples,
    }


def one(out: Path, method: str, seed: int, iterations: int) -> None:
    import torch

    torch.set_num_threads(1)
    result = (run_ours if method in ("ppo", "sppo") else run_trl)(out, method, seed, iterations)
    path = out / "runs" / method / f"seed{seed}" / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1))


def initial(out: Path) -> dict:
    path = out / "initial.json"
    if path.is_file():
        return json.loads(path.read_text())
    import torch

    from align.models.loading import load_policy
    from align.rlhf.metrics import evaluate_policy

    torch.set_num_threads(1)
    _, policy_path, classifier, _, held_out = setup(out)
    policy = load_policy(policy_path, "causal", dtype="float32")
    result = evaluate_policy(
        policy, held_out, scorer_for(classifier), NEW_TOKENS, top_k=50, batch_size=EVAL_PROMPTS, seed=0
    )
    result.pop("samples")
    path.write_text(json.dumps(result, indent=1))
    return result


def summarise(out: Path, methods: list[str], seeds: list[int], start: dict) -> str:
    from align.rlhf.compare import welch_interval
    from align.rlhf.metrics import mean_std

    results = {
        m: [
            json.loads(p.read_text())
            for s in seeds
            if (p := out / "runs" / m / f"seed{s}" / "result.json").is_file()
        ]
        for m in methods
    }
    for rows in results.values():
        for r in rows:
            r["gain_per_s"] = (r["reward"] - start["reward"]) / r["train_seconds"]
    keys = [
        ("reward", "final reward", "{:.3f}"),
        ("kl", "KL to initial", "{:.2f}"),
        ("perplexity", "ppl (initial)", "{:.1f}"),
        ("train_seconds", "train s", "{:.0f}"),
        ("gain_per_s", "reward gain / s", "{:.4f}"),
    ]
    lines = [
        f"Initial policy: reward {start['reward']:.3f}, perplexity {start['perplexity']:.1f} ({start['n']} held-out prompts).",
        "",
        "| method | seeds | samples/run | " + " | ".join(label for _, label, _ in keys) + " |",
        "|---" * (len(keys) + 3) + "|",
    ]
    for m, rows in results.items():
        if not rows:
            continue
        cells = []
        for k, _, fmt in keys:
            mean, std = mean_std([r[k] for r in rows])
            cells.append(f"{fmt.format(mean)} ± {fmt.format(std)}")
        lines.append(f"| {m} | {len(rows)} | {rows[0]['samples']} | " + " | ".join(cells) + " |")
    base = results.get("ppo") or []
    lines += [
        "",
        "Differences to PPO (mean, Welch 95% interval):",
        "",
        "| method | final reward | KL | ppl (initial) | reward gain / s |",
        "|---|---|---|---|---|",
    ]
    for m, rows in results.items():
        if m == "ppo" or len(rows) < 2 or len(base) < 2:
            continue
        cells = []
        for k, fmt in (
            ("reward", "{:+.3f}"),
            ("kl", "{:+.2f}"),
            ("perplexity", "{:+.1f}"),
            ("gain_per_s", "{:+.4f}"),
        ):
            d, lo, hi = welch_interval([r[k] for r in rows], [r[k] for r in base])
            cells.append(f"{fmt.format(d)} [{fmt.format(lo)}, {fmt.format(hi)}]")
        lines.append(f"| {m} - ppo | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    (out / "results.json").write_text(json.dumps({"initial": start, "runs": results}, indent=1))
    plot(out, results)
    return table


def plot(out: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from align.rlhf.report import band

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for m, rows in results.items():
        curves = [r["curve"] for r in rows if r["curve"]]
        if curves:
            n = min(len(c) for c in curves)
            band(ax, curves, m, x=[PROMPTS * (k + 1) for k in range(n)])
    ax.set_xlabel("generated samples")
    ax.set_ylabel("mean reward of the round's samples")
    ax.set_title("IMDB (offline tiny setup): reward during training, mean ± std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="42,43,44,45,46")
    parser.add_argument("--iterations", type=int, default=20, help="Rounds of 32 generated samples per run.")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sppo_rlhf_imdb"))
    parser.add_argument("--one", nargs=2, metavar=("METHOD", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    out = Path(args.out)
    if args.one:
        one(out, args.one[0], int(args.one[1]), args.iterations)
        return
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    out.mkdir(parents=True, exist_ok=True)
    start = initial(out)
    for seed in seeds:  # seed-major: an interrupted benchmark has every method at the seeds it finished
        for m in methods:
            if (out / "runs" / m / f"seed{seed}" / "result.json").is_file():
                continue
            t0 = time.perf_counter()
            cmd = [
                sys.executable,
                __file__,
                "--one",
                m,
                str(seed),
                "--iterations",
                str(args.iterations),
                "--out",
                str(out),
            ]
            subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            print(f"[bench] {m} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
            summarise(out, methods, seeds, start)
    print(summarise(out, methods, seeds, start))


if __name__ == "__main__":
    main()
