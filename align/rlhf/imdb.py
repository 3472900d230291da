"""IMDB positive-sentiment continuation (the symmetric-loss paper's first language experiment): a GPT-2
policy continues review prefixes and is rewarded by a sentiment classifier's positive-class logit.

Stages (each resumable): `lm` (only without `imdb.policy`: build a tiny GPT-2 on the sample reviews and train
it as a language model of reviews, as `lvwerra/gpt2-imdb` is GPT-2 fine-tuned on IMDB), `classifier` (only
without `imdb.classifier`: build and train a tiny DistilBERT sentiment classifier, held-out accuracy
recorded), `initial` (the starting policy on held-out prompts), then `seed<k>` for every seed (PPO or SPPO,
then the held-out evaluation), and the report.
"""

from __future__ import annotations

from typing import Any

from align.data.samples import sample_root
from align.rlhf.config import ImdbConfig
from align.rlhf.imdb_data import IMDB_HUB_ID, clean_review, imdb_prompts, load_reviews, train_val_split
from align.rlhf.rewards import ClassifierScore, sentiment_score
from align.rlhf.run import RlhfRun, check_prompts_fit, tokenizer_and_context
from align.rlhf.training import TrainSettings, pretrain_lm, train_classifier
from align.train_hooks import TrainHooks
from align.trainers.ppo_config import PPOConfig


class ImdbRun(RlhfRun):
    """One IMDB run in `cfg.output_dir`; `run()` executes or resumes every stage and writes the report."""

    name = "sppo-imdb"

    def __init__(
        self,
        cfg: ImdbConfig,
        ppo: PPOConfig,
        lm: TrainSettings,
        classifier: TrainSettings,
        hooks: TrainHooks | None = None,
        overwrite: bool = False,
    ):
        sections = {"imdb": cfg, "ppo": ppo, "lm": lm, "classifier": classifier}
        super().__init__(cfg.output_dir, ppo, cfg.eval, cfg.policy_settings, sections, hooks, overwrite)
        self.cfg, self.lm, self.classifier_settings = cfg, lm, classifier
        stages = ([] if cfg.policy else ["lm"]) + ([] if cfg.classifier else ["classifier"])
        self.announce_resume([*stages, "initial", *(f"seed{s}" for s in cfg.seeds)])
        self.source = cfg.dataset or str(sample_root() / "imdb")
        reviews = load_reviews(self.source, cfg.train_split)
        self.train_reviews, self.val_reviews = train_val_split(reviews, cfg.split_seed)

    # --- models ---------------------------------------------------------------------------------------------
    def policy_path(self) -> str:
        if self.cfg.policy:
            return self.cfg.policy
        self.stage("lm", self.train_lm, collective=True)
        return self.state.result("lm")["model"]

    def train_lm(self) -> dict[str, Any]:
        from align.rlhf.tiny import build_tiny_gpt2

        texts = [clean_review(r.text) for r in self.train_reviews]
        base = self.root / "tiny-gpt2"
        self.on_main(lambda: build_tiny_gpt2(base, texts, seed=self.lm.seed))
        held_out = [clean_review(r.text) for r in self.val_reviews]
        return pretrain_lm(
            str(base),
            texts,
            held_out,
            self.lm,
            self.stage_dir("lm"),
            callbacks=[self.hooks_callback("lm")],
            mixed_precision=self.precision,
        )

    def classifier_path(self, policy_path: str) -> str:
        if self.cfg.classifier:
            return self.cfg.classifier
        self.stage("classifier", lambda: self.train_classifier(policy_path), collective=True)
        return self.state.result("classifier")["model"]

    def train_classifier(self, tokenizer_dir: str) -> dict[str, Any]:
        from align.rlhf.tiny import build_tiny_classifier

        base = self.root / "tiny-classifier"
        self.on_main(lambda: build_tiny_classifier(base, tokenizer_dir, seed=self.classifier_settings.seed))
        held_out = load_reviews(self.source, self.cfg.classifier_eval_split)
        return train_classifier(
            str(base),
            self.train_reviews,
            held_out,
            self.classifier_settings,
            self.stage_dir("classifier"),
            callbacks=[self.hooks_callback("classifier")],
            mixed_precision=self.precision,
        )

    # --- the run --------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        policy_path = self.policy_path()
        scorer = ClassifierScore(
            self.classifier_path(policy_path), cfg.reward_label, cfg.reward_kind, device=self.device
        )
        score = sentiment_score(scorer, cfg.reward_includes_prompt)
        tokenizer, context = tokenizer_and_context(policy_path)
        train = imdb_prompts(self.train_reviews, tokenizer, cfg.prompt_tokens, cfg.prompt_fraction)
        if cfg.max_train_prompts:
            train = train[: cfg.max_train_prompts]
        held_out = imdb_prompts(self.val_reviews, tokenizer, cfg.prompt_tokens, cfg.prompt_fraction)
        if cfg.eval.prompts:
            held_out = held_out[: cfg.eval.prompts]
        check_prompts_fit(tokenizer, train + held_out, self.ppo.sampling.max_new_tokens, context, policy_path)
        self.stage("initial", lambda: self.evaluate_initial(policy_path, held_out, score))
        for seed in cfg.seeds:
            self.stage(
                f"seed{seed}",
                lambda s=seed: self.rl_seed(s, policy_path, cfg.iterations, train, held_out, score),
                collective=True,
            )
        return self.write_report(policy_path) if self.main else {}

    def write_report(self, policy_path: str) -> dict[str, Any]:
        from align.rlhf.report import write_report

        cfg = self.cfg
        models = {
            "policy": policy_path,
            "classifier": cfg.classifier or "tiny DistilBERT trained here",
            "reward": f"{cfg.reward_kind} of label {cfg.reward_label}"
            + (" on prompt + continuation" if cfg.reward_includes_prompt else " on the continuation"),
            "data": cfg.dataset or f"our sample reviews in the {IMDB_HUB_ID} layout",
        }
        return write_report(self, "IMDB positive sentiment", models, cfg.seeds, cfg.iterations)
