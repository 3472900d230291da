"""PPO with token-level rewards for causal LMs and VLMs (ARES stage 1; SPPO via `policy_loss="sppo"`).

Each iteration: sample k responses per problem, get per-token rewards from a `RewardFn` (for ARES: teacher
sentence scores on sentence-final tokens), add the per-token KL penalty against the reference model (the
LoRA-disabled base when LoRA is on, else a frozen copy), estimate advantages by GAE, then run PPO epochs
over minibatches. Dropout stays off (the model is kept in eval mode) so the first epoch's ratio is exactly 1.
Checkpoints hold the trainable weights, value head, optimizer, KL coefficient and iteration; data order and
sampling are seeded by (seed, iteration), so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from align.models.loading import LoadedPolicy
from align.rl.advantages import masked_gae, whiten_across
from align.rl.losses import POLICY_LOSSES, PolicyLossParams, entropy_from_logits, value_loss
from align.rl.rewards import AdaptiveKLController, FixedKLController, kl_penalty, token_rewards
from align.trainers.ppo_config import PPOConfig
from align.trainers.prompt_source import MMCoTPrompt, PromptSource, as_prompt
from align.trainers.reward_fns import RewardFn, Sample
from align.trainers.rollout import Chunk, ValueHead, forward_tokens, sample_chunk

STATE_FILE = "trainer_state.pt"


def flat_config(config: Any) -> dict[str, Any]:
    """A dataclass config as one flat mapping (`sampling.top_k`), as trackers' hparams want it."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        else:
            out[prefix[:-1]] = value

    walk("", asdict(config))
    return out


class PPOTrainer:
    """Token-level PPO over a list of problems. `prompt_source` turns a problem into its prompt (text and
    optional image); the default is ARES's MM-CoT prompt, which needs the `Problem` fields. Prompts go
    through the chat template when `config.chat` is true, or None (auto) and the policy has one."""

    def __init__(
        self,
        policy: LoadedPolicy,
        reward_fn: RewardFn,
        config: PPOConfig,
        problems: list[Any],
        prompt_source: PromptSource | None = None,
    ):
        if not problems:
            raise ValueError("PPOTrainer needs at least one problem")
        self.policy, self.reward_fn, self.config, self.problems = policy, reward_fn, config, problems
        self.prompt_source = prompt_source or MMCoTPrompt()
        self.output_dir = Path(config.output_dir)
        self.accelerator = Accelerator(
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            mixed_precision=config.mixed_precision,
            log_with=None if config.report_to == "none" else config.report_to,
            project_dir=str(self.output_dir),
        )
        torch.manual_seed(config.seed)
        hidden = policy.model.config.get_text_config().hidden_size
        value_head = ValueHead(hidden, config.value_head_hidden)
        params = [p for p in policy.model.parameters() if p.requires_grad] + list(value_head.parameters())
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.model, self.value_head, self.optimizer = self.accelerator.prepare(
            policy.model, value_head, optimizer
        )
        self.ref_model = None
        if not policy.has_lora:
            self.ref_model = (
                copy.deepcopy(self.accelerator.unwrap_model(self.model)).eval().requires_grad_(False)
            )
        if config.adaptive_kl_target is not None:
            self.kl_ctl: Any = AdaptiveKLController(
                config.kl_coef, config.adaptive_kl_target, config.adaptive_kl_horizon
            )
        else:
            self.kl_ctl = FixedKLController(config.kl_coef)
        self.iteration = 0
        if config.report_to != "none":
            self.accelerator.init_trackers("ppo", config=flat_config(config))

    # --- data order -----------------------------------------------------------------------------------------
    def problems_for(self, iteration: int) -> list[Any]:
        """The problems of an iteration: consecutive slices of a per-epoch permutation seeded by the config."""
        n, per = len(self.problems), self.config.prompts_per_iteration
        start = iteration * per
        out = []
        for pos in range(start, start + per):
            epoch, index = divmod(pos, n)
            order = torch.randperm(
                n, generator=torch.Generator().manual_seed(self.config.seed * 7919 + epoch)
            )
            out.append(self.problems[order[index].item()])
        return out

    # --- rollout --------------------------------------------------------------------------------------------
    def _generate_kwargs(self) -> dict[str, Any]:
        s = self.config.sampling
        return {
            "max_new_tokens": s.max_new_tokens,
            "do_sample": True,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "temperature": s.temperature,
        }

    def _groups(self, problems: list[Any]) -> list[list[Any]]:
        if not self.policy.is_vlm:
            groups = [problems]
        else:
            has_image = [as_prompt(self.prompt_source(p)).image is not None for p in problems]
            groups = [
                [p for p, h in zip(problems, has_image, strict=True) if h],
                [p for p, h in zip(problems, has_image, strict=True) if not h],
            ]
        size = self.config.sampling.batch_size
        return [g[i : i + size] for g in groups if g for i in range(0, len(g), size)]

    @torch.no_grad()
    def rollout(self, problems: list[Any], stats: dict[str, list[float]]) -> list[Chunk]:
        """Sample, score and evaluate a batch; returns chunks with rewards, advantages and returns."""
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        chunks = []
        for group in self._groups(problems):
            t0 = time.perf_counter()
            chunk = sample_chunk(
                self.policy,
                group,
                self.config.sampling.num_samples,
                self._generate_kwargs(),
                self.prompt_source,
                self.config.chat,
            )
            stats["time/generation_s"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lengths = chunk.response_mask.sum(1).tolist()
            samples = [
                Sample(p, t, e, n)
                for p, t, e, n in zip(
                    chunk.problems, chunk.texts, chunk.token_char_ends, lengths, strict=True
                )
            ]
            scored = self.reward_fn(samples)
            stats["time/reward_s"].append(time.perf_counter() - t0)
            keep = [i for i, r in enumerate(scored) if r.dropped is None]
            stats["dropped_samples"].append(len(scored) - len(keep))
            for r in scored:
                stats["sentence_scores"].extend(r.sentence_scores)
            if not keep:
                continue
            chunk = chunk.select(torch.tensor(keep))
            chunk.score_rewards = torch.stack([scored[i].rewards for i in keep]).to(chunk.input_ids.device)
            chunk.old_logp, chunk.values, _ = forward_tokens(model, self.value_head, chunk)
            if self.ref_model is None:
                with self.policy.reference():
                    chunk.ref_logp, _, _ = forward_tokens(model, None, chunk)
            else:
                chunk.ref_logp, _, _ = forward_tokens(self.ref_model, None, chunk)
            mask = chunk.response_mask.float()
            chunk.rewards, chunk.kl = token_rewards(
                chunk.score_rewards,
                chunk.old_logp,
                chunk.ref_logp,
                mask,
                self.kl_ctl.value,
                self.config.kl_estimator,
            )
            chunk.advantages, chunk.returns = masked_gae(
                chunk.rewards, chunk.values, mask, self.config.gamma, self.config.lam
            )
            chunks.append(chunk)
        if chunks and self.config.whiten_advantages:
            whitened = whiten_across([c.advantages for c in chunks], [c.response_mask for c in chunks])
            for c, advantages in zip(chunks, whitened, strict=True):
                c.advantages = advantages
        return chunks

    # --- update ---------------------------------------------------------------------------------------------
    def _minibatch_loss(self, mb: Chunk) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        c = self.config
        mask = mb.response_mask.float()
        logp, values, logits = forward_tokens(self.model, self.value_head, mb, with_logits=True)
        params = PolicyLossParams(c.clip_range, c.sppo_alpha, c.sppo_beta, c.sppo_z)
        pg_loss, stats = POLICY_LOSSES[c.policy_loss](logp, mb.old_logp, mb.advantages, mask, params)
        v_loss, _ = value_loss(values, mb.values, mb.returns, mask, c.value_clip_range)
        entropy = entropy_from_logits(logits.detach() if c.ent_coef == 0 else logits, mask)
        loss = pg_loss + c.vf_coef * v_loss - c.ent_coef * entropy
        return loss, {
            **stats,
            "policy_loss": pg_loss.detach(),
            "value_loss": v_loss.detach(),
            "entropy": entropy.detach(),
        }

    def update(self, chunks: list[Chunk], stats: dict[str, list[float]]) -> None:
        c = self.config
        t0 = time.perf_counter()
        generator = torch.Generator().manual_seed(c.seed * 104729 + self.iteration)
        for _ in range(c.ppo_epochs):
            for chunk in chunks:
                order = torch.randperm(len(chunk), generator=generator)
                for start in range(0, len(chunk), c.minibatch_size):
                    mb = chunk.select(order[start : start + c.minibatch_size])
                    with self.accelerator.accumulate(self.model, self.value_head):
                        loss, mb_stats = self._minibatch_loss(mb)
                        self.accelerator.backward(loss)
                        if self.accelerator.sync_gradients and c.max_grad_norm:
                            params = [p for g in self.optimizer.param_groups for p in g["params"]]
                            self.accelerator.clip_grad_norm_(params, c.max_grad_norm)
                        self.optimizer.step()
                        self.optimizer.zero_grad()
                    for k, v in mb_stats.items():
                        stats[k].append(float(v))
        stats["time/update_s"].append(time.perf_counter() - t0)

    # --- one iteration --------------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """One PPO iteration; returns its logged metrics."""
        c = self.config
        torch.manual_seed(c.seed * 1000003 + self.iteration)
        stats: dict[str, list[float]] = defaultdict(list)
        t0 = time.perf_counter()
        chunks = self.rollout(self.problems_for(self.iteration), stats)
        if chunks:
            self.update(chunks, stats)
        metrics = self._summarise(chunks, stats, time.perf_counter() - t0)
        n_tokens = sum(int(ch.response_mask.sum()) for ch in chunks)
        self.kl_ctl.update(metrics.get("kl", 0.0), n_tokens)
        self.iteration += 1
        self._log(metrics)
        if c.save_every and self.iteration % c.save_every == 0:
            self.save_checkpoint()
        return metrics

    def _summarise(
        self, chunks: list[Chunk], stats: dict[str, list[float]], seconds: float
    ) -> dict[str, float]:
        metrics: dict[str, float] = {"iteration": float(self.iteration)}
        for k, v in stats.items():
            if k == "sentence_scores":
                continue
            metrics[k] = (
                float(sum(v)) if k.startswith(("time/", "dropped")) else float(sum(v) / max(len(v), 1))
            )
        scores = stats.get("sentence_scores", [])
        metrics["score_mean"] = sum(scores) / len(scores) if scores else float("nan")
        for b in range(11):
            metrics[f"score_hist/{b / 10:.1f}"] = float(sum(1 for s in scores if round(s * 10) == b))
        if chunks:
            per_sample = torch.cat([(ch.score_rewards * ch.response_mask).sum(1) for ch in chunks])
            kl = torch.cat([(ch.kl * ch.response_mask).sum(1) for ch in chunks])
            # k1 (often the reward's estimator) can go negative under top-k sampling; k3 never does
            kl_k3 = torch.cat(
                [(kl_penalty(ch.old_logp, ch.ref_logp, "k3") * ch.response_mask).sum(1) for ch in chunks]
            )
            values = torch.cat([ch.values[ch.response_mask.bool()] for ch in chunks])
            returns = torch.cat([ch.returns[ch.response_mask.bool()] for ch in chunks])
            tokens = sum(int(ch.response_mask.sum()) for ch in chunks)
            metrics.update(
                {
                    "reward": float(per_sample.mean()),
                    "kl": float(kl.mean()),
                    "kl_k3": float(kl_k3.mean()),
                    "kl_coef": float(self.kl_ctl.value),
                    "response_tokens": float(tokens / len(per_sample)),
                    "explained_variance": float(1 - (returns - values).var() / returns.var().clamp(min=1e-8)),
                    "tokens_per_s": tokens / max(seconds, 1e-9),
                }
            )
        return metrics

    def _log(self, metrics: dict[str, float]) -> None:
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with (self.output_dir / "metrics.jsonl").open("a") as f:
                f.write(json.dumps(metrics) + "\n")
        if self.config.report_to != "none":
            self.accelerator.log(metrics, step=self.iteration)

    def train(self, iterations: int) -> list[dict[str, float]]:
        """Run until `iterations` in total, resuming from `output_dir` when a checkpoint is there."""
        if (self.output_dir / STATE_FILE).is_file():
            self.load_checkpoint()
        history = []
        while self.iteration < iterations:
            history.append(self.step())
        return history

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Trainable weights, value head, optimizer, KL coefficient and iteration, written atomically."""
        path = Path(path or self.output_dir)
        if not self.accelerator.is_main_process:
            return path
        path.mkdir(parents=True, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model)
        state = {
            "model": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
            "value_head": self.accelerator.unwrap_model(self.value_head).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "kl_coef": self.kl_ctl.value,
            "iteration": self.iteration,
            "config": asdict(self.config),
        }
        tmp = path / f".{STATE_FILE}.tmp"
        torch.save(state, tmp)
        os.replace(tmp, path / STATE_FILE)
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path or self.output_dir) / STATE_FILE
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = self.accelerator.unwrap_model(self.model)
        missing = [n for n, p in model.named_parameters() if p.requires_grad and n not in state["model"]]
        if missing:
            raise ValueError(
                f"{path}: checkpoint lacks {len(missing)} trainable weights (e.g. {missing[0]}); "
                "was it written by a run with another model or LoRA setting?"
            )
        model.load_state_dict(state["model"], strict=False)
        self.accelerator.unwrap_model(self.value_head).load_state_dict(state["value_head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.kl_ctl.value = state["kl_coef"]
        self.iteration = state["iteration"]
