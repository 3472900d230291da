"""PPO with token-level rewards for causal LMs and VLMs (ARES stage 1; SPPO via `policy_loss="sppo"`).

Each iteration: sample k responses per problem, get per-token rewards from a `RewardFn` (for ARES: teacher
sentence scores on sentence-final tokens), add the per-token KL penalty against the reference model (the
model at the start of the stage: a frozen adapter copy with LoRA, a frozen model copy without), estimate
advantages by GAE, then run PPO epochs over minibatches. Dropout stays off (the model is kept in eval mode)
so the first epoch's ratio is exactly 1. Gradient accumulation windows end with the iteration, so nothing
carries over. Checkpoints hold the trainable weights, value head, optimizer, KL coefficient and iteration;
data order and sampling are seeded by (seed, iteration, rank), so a resumed run repeats an uninterrupted one
exactly.

Distributed (one `Accelerator` for the run, see `align.trainers.distributed`): each rank samples and scores
its own share of the iteration's problems (so every teacher request is a distinct item), advantages are
whitened with statistics over all ranks, ranks run the same number of micro-steps (padding with zero-weight
repeats), metrics are computed over all ranks and files are written by the main process. The policy and
value head are one module, so DeepSpeed ZeRO-2/3 makes one engine of them.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from accelerate import Accelerator, DistributedType

from align.checkpoints import load_checkpoint, save_checkpoint, save_weights
from align.models.loading import LoadedPolicy
from align.rl.advantages import whiten_across
from align.rl.losses import POLICY_LOSSES, PolicyLossParams, entropy_from_logits, value_loss
from align.rl.rewards import AdaptiveKLController, FixedKLController, kl_penalty
from align.train_hooks import TrainHooks, run_iterations
from align.trainers.distributed import (
    accumulation_windows,
    check_precision,
    configure_deepspeed,
    gather_lists,
    generation_weights,
    is_deepspeed,
    make_accelerator,
    micro_step,
    over_ranks,
    precision_summary,
    shard,
    zero_stage,
)
from align.trainers.ppo_config import PPOConfig
from align.trainers.ppo_rollout import (
    ScoringReuse,
    add_advantages,
    add_kl_rewards,
    keep_rewarded,
    samples_of,
    scored_buffers,
)
from align.trainers.prompt_source import MMCoTPrompt, PromptSource, as_prompt
from align.trainers.reward_fns import RewardFn, TokenRewards
from align.trainers.rollout import Chunk, sample_chunk
from align.trainers.scoring import PolicyWithValue, ValueHead, forward_tokens

STATE_FILE = "trainer_state.pt"
VALUE_HEAD_FILE = "value_head.safetensors"
PRECISION_FILE = "precision.json"  # how the stage computed (`distributed.precision_summary`)


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
        accelerator: Accelerator | None = None,
    ):
        if not problems:
            raise ValueError("PPOTrainer needs at least one problem")
        self.policy, self.reward_fn, self.config, self.problems = policy, reward_fn, config, problems
        self.prompt_source = prompt_source or MMCoTPrompt()
        self.output_dir = Path(config.output_dir)
        self.accelerator = accelerator or make_accelerator(config.mixed_precision)
        check_precision(self.accelerator, config.mixed_precision, "ppo")
        torch.manual_seed(config.seed)
        # the reference is the model as it is now, before any update of this stage
        self.ref_model = None
        if policy.has_lora:
            policy.freeze_reference()
        else:
            self.ref_model = _frozen_copy(policy.model, self.accelerator)
        hidden = policy.model.config.get_text_config().hidden_size
        self.value_head = ValueHead(hidden, config.value_head_hidden)
        if is_deepspeed(self.accelerator):
            # one engine, one dtype of trainable weights: a model ZeRO-3 loaded sharded keeps the dtype of its
            # config (bf16) and the engine casts nothing, so the head takes the policy's trainable dtype
            trainable = next(p.dtype for p in policy.model.parameters() if p.requires_grad)
            self.value_head.to(trainable)
        module = PolicyWithValue(policy.model, self.value_head)
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        configure_deepspeed(self.accelerator, config.minibatch_size, config.gradient_accumulation_steps)
        self.model, self.optimizer = self.accelerator.prepare(module, optimizer)
        if self.ref_model is not None:
            dtype = _weights_dtype(policy.model)  # bf16 when DeepSpeed's bf16 engine cast the policy
            self.ref_model = _place_reference(self.ref_model, self.accelerator, config.minibatch_size, dtype)
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            summary = precision_summary(self.accelerator, module)
            (self.output_dir / PRECISION_FILE).write_text(json.dumps(summary, indent=1) + "\n")
        if config.adaptive_kl_target is not None:
            self.kl_ctl: Any = AdaptiveKLController(
                config.kl_coef, config.adaptive_kl_target, config.adaptive_kl_horizon
            )
        else:
            self.kl_ctl = FixedKLController(config.kl_coef)
        self.iteration = 0
        self._trackers: list[Any] | None = None
        self.reuse = ScoringReuse()  # the scoring pass's forward of the first update micro-step

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

    def local_problems(self, iteration: int) -> list[Any]:
        """This rank's share of the iteration's problems (all of them in a single process)."""
        return shard(self.problems_for(iteration), self.accelerator, pad=False)

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
        """Sample, score and evaluate a batch; returns chunks with rewards, advantages and returns. The steps:
        sampling, rewards, dropping (per group), then scoring, KL and advantages (per chunk), then whitening.
        Every group is sampled and rewarded before any is scored, so that no generation runs while the first
        update micro-step's forward (see `_score`) holds its activations."""
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        if self.ref_model is not None:
            self.ref_model.train(False)
        self.reuse.start(self._reuse_scoring())
        rewarded = []
        for group in self._groups(problems):
            chunk = self._sample(group, stats)
            scored = self._reward(chunk, stats)
            chunk = keep_rewarded(chunk, scored)  # dropping
            if chunk is not None:
                rewarded.append(chunk)
        for k, chunk in enumerate(rewarded):
            self._score(model, chunk, k, stats)
            add_kl_rewards(chunk, self.kl_ctl.value, self.config.kl_estimator)
            add_advantages(chunk, self.config.gamma, self.config.lam)
        if self.config.whiten_advantages:
            self._whiten(rewarded)
        return rewarded

    def _sample(self, group: list[Any], stats: dict[str, list[float]]) -> Chunk:
        """k responses per problem of a group (whole weights under ZeRO-3), under the run's autocast (bf16
        generation when the launch says bf16, as the update computes)."""
        t0 = time.perf_counter()
        with generation_weights(self.model, self.accelerator), self.accelerator.autocast():
            chunk = sample_chunk(
                self.policy,
                group,
                self.config.sampling.num_samples,
                self._generate_kwargs(),
                self.prompt_source,
                self.config.chat,
            )
        stats["time/generation_s"].append(time.perf_counter() - t0)
        return chunk

    def _reward(self, chunk: Chunk, stats: dict[str, list[float]]) -> list[TokenRewards]:
        """The reward function's token rewards (or drop reasons) for a chunk's samples."""
        t0 = time.perf_counter()
        scored = self.reward_fn(samples_of(chunk))
        stats["time/reward_s"].append(time.perf_counter() - t0)
        stats["dropped_samples"].append(sum(r.dropped is not None for r in scored))
        for r in scored:
            stats["sentence_scores"].extend(r.sentence_scores)
        return scored

    def _order(self, epoch: int, chunk_index: int, n: int) -> torch.Tensor:
        """The row order of a chunk's minibatches in an update epoch, seeded by (seed, iteration, epoch)."""
        seed = ((self.config.seed * 104729 + self.iteration) * 1009 + epoch) * 1013 + chunk_index
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def _minibatches(self, chunk: Chunk, epoch: int, chunk_index: int) -> list[torch.Tensor]:
        order, size = self._order(epoch, chunk_index, len(chunk)), self.config.minibatch_size
        return [order[s : s + size] for s in range(0, len(chunk), size)]

    def _reuse_scoring(self) -> bool:
        """Whether the first update micro-step may train on the scoring pass's forward: a single plain
        process (DDP and DeepSpeed pair each forward with its backward and collectives)."""
        return self.config.reuse_scoring_forward and self.accelerator.distributed_type == DistributedType.NO

    def _score(
        self, model: torch.nn.Module, chunk: Chunk, chunk_index: int, stats: dict[str, list[float]]
    ) -> None:
        """Old log-probs, values and reference log-probs of a chunk (float32), computed over the very
        minibatches of the first update epoch: the same rows in the same batch (VLM vision towers batch
        images together), so the first epoch's ratio is exactly 1, not 1 up to float noise.

        The update's first micro-step runs at the weights of the rollout, so its forward is the one scored
        here: it is run with gradients and kept for the update (`reuse_scoring_forward`), which then skips
        its own forward (TRL's GRPO does the same with one update per rollout). One micro-step only, so
        that the memory held is what that micro-step needs anyway, whatever the accumulation; its layers
        keep what `activation_checkpointing` says, and the reference pass runs before it."""
        t0 = time.perf_counter()
        scored_buffers(chunk)
        for rows in self._minibatches(chunk, 0, chunk_index):
            mb = chunk.select(rows)
            # the reference first: its pass's memory is free again before a kept forward holds any
            with self.accelerator.autocast():
                if self.ref_model is None:
                    with self.policy.reference():
                        ref_logp, _, _ = forward_tokens(model, mb)
                else:
                    ref_logp, _, _ = forward_tokens(self.ref_model, mb)
            if self.reuse.claim():
                with torch.enable_grad():
                    outputs = self._train_forward(mb)
                self.reuse.keep(chunk, rows, outputs)
                logp, values = outputs[0].detach(), outputs[1].detach()
            else:
                with self.accelerator.autocast():
                    logp, values, _ = forward_tokens(model, mb, with_values=True)
            rows = rows.to(chunk.input_ids.device)
            chunk.old_logp[rows], chunk.values[rows], chunk.ref_logp[rows] = logp, values, ref_logp
        stats["time/scoring_s"].append(time.perf_counter() - t0)

    def _whiten(self, chunks: list[Chunk]) -> None:
        """Advantages whitened with the mean and standard deviation over every rank's response tokens."""

        def sum_over_ranks(moments: list[float]) -> list[float]:
            return [over_ranks(self.accelerator, v, "sum") for v in moments]

        whitened = whiten_across(
            [c.advantages for c in chunks], [c.response_mask for c in chunks], sum_over_ranks
        )
        for c, advantages in zip(chunks, whitened, strict=True):
            c.advantages = advantages

    # --- update ---------------------------------------------------------------------------------------------
    def _train_forward(self, mb: Chunk) -> tuple:
        """The forward the update trains on: with gradients, values and logits, layers checkpointed as
        `activation_checkpointing` says (the value head alone learns in the warm-up iterations)."""
        warmup = self.iteration < self.config.value_warmup_iterations
        kwargs = {"detach_values": warmup, "checkpointing": self.config.activation_checkpointing}
        return forward_tokens(self.model, mb, with_values=True, with_logits=True, **kwargs)

    def _minibatch_loss(
        self, mb: Chunk, outputs: tuple | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of a minibatch; `outputs` is its forward when the scoring pass kept it."""
        c = self.config
        mask = mb.response_mask.float()
        warmup = self.iteration < c.value_warmup_iterations  # value head alone: the policy stays put
        logp, values, logits = outputs or self._train_forward(mb)
        params = PolicyLossParams(c.clip_range, c.sppo_alpha, c.sppo_beta, c.sppo_z)
        pg_loss, stats = POLICY_LOSSES[c.policy_loss](logp, mb.old_logp, mb.advantages, mask, params)
        v_loss, _ = value_loss(values, mb.values, mb.returns, mask, c.value_clip_range)
        entropy = entropy_from_logits(logits.detach() if c.ent_coef == 0 else logits, mask)
        loss = pg_loss + c.vf_coef * v_loss - c.ent_coef * entropy
        if warmup:  # no policy term at all: the policy's weights get no gradient, so no step and no decay
            loss = c.vf_coef * v_loss
        return loss, {
            **stats,
            "policy_loss": pg_loss.detach(),
            "value_loss": v_loss.detach(),
            "entropy": entropy.detach(),
        }

    def update(self, chunks: list[Chunk], stats: dict[str, list[float]]) -> None:
        """PPO epochs over minibatches. Every rank runs the same number of micro-steps (a rank with fewer
        minibatches repeats some with zero weight), and the last accumulation window of the iteration
        steps even when short."""
        c = self.config
        t0 = time.perf_counter()
        plan = [
            (chunk, rows)
            for epoch in range(c.ppo_epochs)
            for k, chunk in enumerate(chunks)
            for rows in self._minibatches(chunk, epoch, k)
        ]
        n_micro = int(over_ranks(self.accelerator, len(plan), "max"))
        if n_micro == 0 or over_ranks(self.accelerator, len(plan), "min") == 0:
            self.reuse.clear()
            stats["update_skipped"].append(1.0)  # a rank has nothing to learn from: all ranks skip together
            return
        self.model.train(False)  # dropout off: the first epoch's ratio is exactly 1
        self.accelerator.gradient_accumulation_steps = c.gradient_accumulation_steps
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        for i, (sync, weight) in enumerate(accumulation_windows(n_micro, c.gradient_accumulation_steps)):
            chunk, rows = plan[i % len(plan)]
            repeat = i >= len(plan)
            with micro_step(self.accelerator, self.model, sync):
                kept = None if repeat else self.reuse.take(i, chunk, rows)
                loss, mb_stats = self._minibatch_loss(chunk.select(rows), kept)
                self.accelerator.backward(loss * (0.0 if repeat else weight))
                if sync:
                    if c.max_grad_norm and not is_deepspeed(self.accelerator):
                        self.accelerator.clip_grad_norm_(params, c.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
            if not repeat:
                for k, v in mb_stats.items():
                    stats[k].append(float(v))
        self.reuse.clear()
        stats["time/update_s"].append(time.perf_counter() - t0)

    # --- one iteration --------------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """One PPO iteration; returns its logged metrics."""
        c = self.config
        torch.manual_seed(c.seed * 1000003 + self.iteration + 1_000_000_007 * self.accelerator.process_index)
        stats: dict[str, list[float]] = defaultdict(list)
        t0 = time.perf_counter()
        chunks = self.rollout(self.local_problems(self.iteration), stats)
        self.update(chunks, stats)
        seconds = time.perf_counter() - t0
        metrics = self._summarise(*self._all_ranks(chunks, stats), seconds)
        # Ziegler et al.'s controller counts its horizon in samples (sequences), not tokens
        samples = int(over_ranks(self.accelerator, sum(len(ch) for ch in chunks), "sum"))
        self.kl_ctl.update(metrics.get("kl", 0.0), samples)
        self.iteration += 1
        self._log(metrics)
        if c.save_every and self.iteration % c.save_every == 0:
            self.save_checkpoint()
        return metrics

    def _all_ranks(self, chunks: list[Chunk], stats: dict[str, list[float]]) -> tuple[list[Any], dict]:
        """The chunks' metric fields and the stats of every rank (as they are, in a single process)."""
        if self.accelerator.num_processes == 1:
            return chunks, stats
        fields = ("score_rewards", "response_mask", "kl", "values", "returns", "old_logp", "ref_logp")
        light = [SimpleNamespace(**{f: getattr(ch, f).cpu() for f in fields}) for ch in chunks]
        parts = gather_lists(self.accelerator, [dict(stats)])
        merged: dict[str, list[float]] = defaultdict(list)
        for part in parts:
            for k, v in part.items():
                if not k.startswith("time/"):
                    merged[k].extend(v)
        for k in {k for part in parts for k in part if k.startswith("time/")}:
            merged[k] = [max(sum(part.get(k, [])) for part in parts)]  # wall time: the slowest rank's
        return gather_lists(self.accelerator, light), merged

    def _summarise(
        self, chunks: list[Any], stats: dict[str, list[float]], seconds: float
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
        if not self.accelerator.is_main_process:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with (self.output_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        if self._trackers is None:
            self._trackers = open_trackers(self.config.report_to, self.output_dir, flat_config(self.config))
        for tracker in self._trackers:
            tracker.log(metrics, step=self.iteration)

    def close(self) -> None:
        """Finish the trackers (they reopen on the next logged iteration)."""
        for tracker in self._trackers or []:
            tracker.finish()
        self._trackers = None

    def train(
        self, iterations: int, hooks: TrainHooks | None = None, label: str = "ppo"
    ) -> list[dict[str, float]]:
        """Run until `iterations` in total, resuming from `output_dir` when a checkpoint is there. With
        `hooks`: one progress bar (reward, KL, teacher score), and a stop request ends the run after the
        current iteration with its checkpoint written (`StopRequested`)."""
        history = run_iterations(
            self,
            iterations,
            hooks,
            label,
            STATE_FILE,
            lambda m: {"reward": m.get("reward"), "kl": m.get("kl"), "score": m.get("score_mean")},
            before_stop=self.close,
        )
        self.close()
        return history

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Trainable weights (policy and value head), optimizer, KL coefficient and iteration. Under DeepSpeed
        the engine writes its (sharded) weights and optimizer on every rank; the small state file, written
        last and atomically by the main process, names that engine checkpoint."""
        path = Path(path or self.output_dir)
        path.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {
            "kl_coef": self.kl_ctl.value,
            "iteration": self.iteration,
            "config": asdict(self.config),
        }
        if is_deepspeed(self.accelerator):
            state["deepspeed_tag"] = f"iteration-{self.iteration}"
            self.model.save_checkpoint(str(path / "deepspeed"), tag=state["deepspeed_tag"])
        elif self.accelerator.is_main_process:
            module = self.accelerator.unwrap_model(self.model)
            state["model"] = {n: p.detach().cpu() for n, p in module.named_parameters() if p.requires_grad}
            state["optimizer"] = self.optimizer.state_dict()
        if self.accelerator.is_main_process:
            if "model" in state:  # the value head alone, as safetensors, for users who want it
                head = {k: v for k, v in state["model"].items() if k.startswith("value_head.")}
                save_weights(path / VALUE_HEAD_FILE, head, {"iteration": self.iteration})
            save_checkpoint(path / STATE_FILE, state)
            for old in (path / "deepspeed").glob("iteration-*"):
                if old.name != state.get("deepspeed_tag"):
                    shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path or self.output_dir)
        state = load_checkpoint(path / STATE_FILE)
        if "deepspeed_tag" in state:
            if not is_deepspeed(self.accelerator):
                raise ValueError(f"{path / STATE_FILE} was written under DeepSpeed; resume it with DeepSpeed")
            self.model.load_checkpoint(str(path / "deepspeed"), tag=state["deepspeed_tag"])
        else:
            if is_deepspeed(self.accelerator):
                raise ValueError(f"{path / STATE_FILE} was written without DeepSpeed; resume it the same way")
            module = self.accelerator.unwrap_model(self.model)
            trainable = [n for n, p in module.named_parameters() if p.requires_grad]
            missing = [n for n in trainable if n not in state["model"]]
            if missing:
                raise ValueError(
                    f"{path / STATE_FILE}: checkpoint lacks {len(missing)} trainable weights (e.g. {missing[0]}); "
                    "was it written by a run with another model or LoRA setting?"
                )
            module.load_state_dict(state["model"], strict=False)
            self.optimizer.load_state_dict(state["optimizer"])
        self.kl_ctl.value = state["kl_coef"]
        self.iteration = state["iteration"]

    def finish(self) -> None:
        """End of the stage: drop the frozen reference (adapter or copy) so that saving writes the trained
        model only, and release the accelerator's hold on this stage's engine."""
        self.close()
        self.policy.release_reference()
        self.ref_model = None
        self.accelerator.free_memory()


def _frozen_copy(model: torch.nn.Module, accelerator: Accelerator) -> torch.nn.Module:
    """A frozen copy of the model: the full fine-tuning reference. A model that DeepSpeed ZeRO-3 loaded
    sharded (transformers does under a ZeRO-3 config) is rebuilt whole and filled from gathered weights."""
    if not any(hasattr(p, "ds_id") for p in model.parameters()):
        return copy.deepcopy(model).eval().requires_grad_(False)
    import deepspeed

    with accelerator.state.deepspeed_plugin.zero3_init_context_manager(enable=False):
        reference = type(model)(model.config)
    with deepspeed.zero.GatheredParameters(list(model.parameters())):
        reference.load_state_dict(model.state_dict())
    return reference.to(next(iter(model.state_dict().values())).dtype).eval().requires_grad_(False)


def _weights_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of a model's floating-point weights (its first one's)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _place_reference(
    reference: torch.nn.Module, accelerator: Accelerator, micro_batch: int, dtype: torch.dtype
) -> torch.nn.Module:
    """The frozen reference on the run's device, in the policy's weight dtype (so that its log-probs start
    equal to the policy's: KL 0 before the first update, also under DeepSpeed's bf16 engine); under ZeRO-3
    an inference engine that shards it like the policy (TRL does the same; the engine casts it as it cast
    the policy), elsewhere a plain module."""
    if zero_stage(accelerator) != 3:
        return reference.to(accelerator.device, dtype)
    import deepspeed

    config = copy.deepcopy(accelerator.state.deepspeed_plugin.deepspeed_config)
    for key in ("optimizer", "scheduler"):
        config.pop(key, None)
    config["train_micro_batch_size_per_gpu"] = micro_batch
    config["train_batch_size"] = micro_batch * accelerator.num_processes
    config["gradient_accumulation_steps"] = 1
    engine, *_ = deepspeed.initialize(model=reference, config=config)
    engine.eval()  # DeepSpeedEngine.eval() returns None
    return engine


def open_trackers(report_to: str, logging_dir: Path, config: dict[str, Any]) -> list[Any]:
    """Experiment trackers (`tensorboard`, `wandb`, ...; comma-separated) for one PPO stage, under
    `logging_dir`; opened directly so that each stage of a run has its own without a second Accelerator."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    trackers = []
    for name in [n.strip() for n in report_to.split(",") if n.strip() not in ("", "none")]:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise ValueError(
                f"ppo.report_to: unknown tracker {name!r}; known: {sorted(LOGGER_TYPE_TO_CLASS)}"
            )
        cls = LOGGER_TYPE_TO_CLASS[name]
        extra = {"logging_dir": str(logging_dir)} if getattr(cls, "requires_logging_directory", False) else {}
        tracker = cls("ppo", **extra)
        if hasattr(tracker, "start"):  # accelerate opens the writer in start() (init_trackers calls it)
            tracker.start()
        tracker.store_init_configuration(config)
        trackers.append(tracker)
    return trackers
