"""TL;DR summarisation (the symmetric-loss paper's second language experiment), in three resumable stages like
the ARES loop:

1. `sft`: supervised fine-tuning of the base model on post/summary pairs with TRL's `SFTTrainer` (skipped
   when `tldr.sft_model` names an existing summariser); held-out loss before and after.
2. `reward_model`: a scalar reward model trained on preference pairs with TRL's `RewardTrainer`, from the SFT
   model by default (or `tldr.reward_model`, checked on the held-out pairs); held-out pair accuracy.
3. `seed<k>`: PPO or SPPO against the reward model for every seed, then the held-out evaluation: reward,
   KL to the SFT model, perplexity under it, distinct-n, ROUGE-1/2/L against the human summaries, and the
   judge's win rate against the human summaries (both orders, ties, bootstrap interval).

Without `tldr.policy` the base is a tiny GPT-2 built on the sample posts (offline demo).
"""

from __future__ import annotations

from typing import Any

from align.data.samples import sample_root
from align.eval.winrate import judge_win_rate
from align.rlhf.config import TldrConfig
from align.rlhf.judge import SummaryJudge
from align.rlhf.rewards import ClassifierScore, summary_score
from align.rlhf.run import RlhfRun, check_prompts_fit, tokenizer_and_context
from align.rlhf.tldr_data import (
    TLDR_PREFERENCE_HUB_ID,
    TLDR_SFT_HUB_ID,
    load_preferences,
    load_summaries,
    tldr_prompts,
)
from align.rlhf.training import TrainSettings, preference_accuracy, train_reward_model, train_sft
from align.train_hooks import TrainHooks
from align.trainers.ppo_config import PPOConfig


def limit(items: list, n: int) -> list:
    return items[:n] if n else items


class TldrRun(RlhfRun):
    """One TL;DR run in `cfg.output_dir`; `run()` executes or resumes every stage and writes the report."""

    name = "sppo-tldr"
    with_rouge = True

    def __init__(
        self,
        cfg: TldrConfig,
        ppo: PPOConfig,
        sft: TrainSettings,
        reward: TrainSettings,
        hooks: TrainHooks | None = None,
        overwrite: bool = False,
    ):
        sections = {"tldr": cfg, "ppo": ppo, "sft": sft, "reward": reward}
        super().__init__(cfg.output_dir, ppo, cfg.eval, cfg.policy_settings, sections, hooks, overwrite)
        self.cfg, self.sft_settings, self.reward_settings = cfg, sft, reward
        stages = ([] if cfg.sft_model else ["sft"]) + ["reward_model", "initial"]
        self.announce_resume([*stages, *(f"seed{s}" for s in cfg.seeds)])
        self.sft_source = cfg.sft_dataset or str(sample_root() / "tldr" / "sft")
        self.preference_source = cfg.preference_dataset or str(sample_root() / "tldr" / "preference")
        self._judge = None

    # --- stages 1 and 2 -------------------------------------------------------------------------------------
    def sft_path(self) -> str:
        if self.cfg.sft_model:
            return self.cfg.sft_model
        self.stage("sft", self.train_sft, collective=True)
        return self.state.result("sft")["model"]

    def train_sft(self) -> dict[str, Any]:
        c = self.cfg
        train = load_summaries(self.sft_source, c.sft_train_split)
        held_out = limit(load_summaries(self.sft_source, c.sft_eval_split), c.held_out_pairs)
        base = c.policy
        if not base:
            from align.rlhf.tiny import build_tiny_gpt2

            texts = [p.prompt + p.completion for p in train]
            base = str(self.root / "tiny-gpt2")
            self.on_main(lambda: build_tiny_gpt2(base, texts, seed=self.sft_settings.seed))
        return train_sft(
            base,
            train,
            held_out,
            self.sft_settings,
            self.stage_dir("sft"),
            callbacks=[self.hooks_callback("sft")],
            mixed_precision=self.precision,
        )

    def reward_model_path(self, sft_path: str) -> str:
        self.stage("reward_model", lambda: self.train_reward_model(sft_path), collective=True)
        return self.state.result("reward_model")["model"]

    def train_reward_model(self, sft_path: str) -> dict[str, Any]:
        c = self.cfg
        held_out = limit(load_preferences(self.preference_source, c.preference_eval_split), c.held_out_pairs)
        if c.reward_model:
            return {
                **preference_accuracy(c.reward_model, held_out),
                "model": c.reward_model,
                "trained": False,
            }
        train = load_preferences(self.preference_source, c.preference_train_split)
        base = c.reward_base or sft_path
        result = train_reward_model(
            base,
            train,
            held_out,
            self.reward_settings,
            self.stage_dir("reward_model"),
            callbacks=[self.hooks_callback("reward_model")],
            mixed_precision=self.precision,
        )
        return {**result, "trained": True}

    # --- evaluation with the judge ----------------------------------------------------------------------------
    def judge(self) -> SummaryJudge:
        if self._judge is None:
            from teacher import CachedTeacher, FeedbackCache, make_teacher

            cache = FeedbackCache(self.cfg.judge_cache or str(self.root / "judge.sqlite"))
            self._judge = SummaryJudge(CachedTeacher(make_teacher(self.cfg.judge), cache))
        return self._judge

    def extend(self, result: dict[str, Any], prompts: list, seed: int) -> dict[str, Any]:
        """Add the judge's win rate of the samples over the human summaries."""
        texts = [s["text"].strip() for s in result["samples"]]
        wr = judge_win_rate(
            self.judge(), prompts, texts, [p.reference for p in prompts], self.cfg.judge_concurrency, seed
        )
        result["win_rate"] = wr.win_rate
        result["win_rate_ci"] = [wr.ci_low, wr.ci_high]
        result["judge"] = {k: v for k, v in wr.to_dict().items() if k != "pairs"}
        return result

    # --- the run --------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        c = self.cfg
        sft = self.sft_path()
        scorer = ClassifierScore(
            self.reward_model_path(sft),
            "",
            "logit",
            device=self.device,
            dtype=c.reward_dtype,
            quantization=c.reward_quantization,
        )
        score = summary_score(scorer)
        tokenizer, context = tokenizer_and_context(sft)
        posts = limit(load_summaries(self.sft_source, c.sft_train_split), c.max_train_prompts)
        train = tldr_prompts(posts, tokenizer, c.max_prompt_tokens)
        posts = limit(load_summaries(self.sft_source, c.eval_split), c.eval.prompts)
        held_out = tldr_prompts(posts, tokenizer, c.max_prompt_tokens)
        check_prompts_fit(tokenizer, train + held_out, self.ppo.sampling.max_new_tokens, context, sft)
        self.stage("initial", lambda: self.evaluate_initial(sft, held_out, score))
        for seed in c.seeds:
            self.stage(
                f"seed{seed}",
                lambda s=seed: self.rl_seed(s, sft, c.iterations, train, held_out, score),
                collective=True,
            )
        return self.write_report(sft) if self.main else {}

    def write_report(self, sft: str) -> dict[str, Any]:
        from align.rlhf.report import write_report

        c = self.cfg
        models = {
            "policy (SFT)": sft,
            "reward model": self.state.result("reward_model")["model"],
            "judge": c.judge,
            "data": f"{c.sft_dataset or 'our sample posts in the ' + TLDR_SFT_HUB_ID + ' layout'}; "
            f"{c.preference_dataset or 'our sample pairs in the ' + TLDR_PREFERENCE_HUB_ID + ' layout'}",
        }
        return write_report(self, "TL;DR summarisation", models, c.seeds, c.iterations)
