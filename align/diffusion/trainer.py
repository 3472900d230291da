"""RL fine-tuning of any denoiser eps(x_t, t, cond) with DLPO or a baseline (RWR, DDPO, DPOK, KL-in-reward).

Each iteration: sample trajectories with the scheduler's stochastic chain, keeping x_t, x_{t-1}, the sampling
log-prob and the KL to the frozen pretrained model at K steps per trajectory; score x_0 with the reward; turn
rewards into advantages; then update with the chosen objective (`align.diffusion.objectives`). DLPO adds the
diffusion loss at `diffusion_timesteps` random timesteps on real data (or, without data, on the samples).
Prompt order, noise and kept steps are seeded by (seed, iteration), and checkpoints hold the weights, the
optimizer and the iteration, so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import time
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from align.checkpoints import load_checkpoint, save_checkpoint
from align.diffusion.config import DiffusionRLConfig
from align.diffusion.objectives import (
    ObjectiveInputs,
    ObjectiveSettings,
    get_objective,
    kl_in_reward_shaping,
    normalise_rewards,
)
from align.diffusion.rollout import (
    Trajectories,
    denoiser_timesteps,
    sample_trajectories,
    select_cond,
    stochastic_step_indices,
)
from align.diffusion.steps import (
    check_scheduler,
    gaussian_kl,
    noise_prediction_loss,
    step_distribution,
    step_log_prob,
    step_std,
    training_target,
)
from align.diffusion.task import DiffusionTask
from align.train_hooks import TrainHooks, run_iterations
from align.trainers.distributed import configure_deepspeed, is_deepspeed, make_accelerator, precision_summary

STATE_FILE = "trainer_state.pt"
PRECISION_FILE = "precision.json"  # how the run computed (`distributed.precision_summary`)


class DiffusionRLTrainer:
    """Policy-gradient fine-tuning of a diffusion model against a reward."""

    def __init__(self, model: nn.Module, scheduler, task: DiffusionTask, config: DiffusionRLConfig):
        check_scheduler(scheduler)
        self.task, self.config, self.scheduler = task, config, scheduler
        self.objective = get_objective(config.objective)
        if self.objective.needs_diffusion_loss and config.beta != 0 and config.diffusion_timesteps == 0:
            raise ValueError(f"objective {config.objective!r} with beta != 0 needs diffusion_timesteps >= 1")
        if config.objective == "diffusion_only" and config.beta == 0:
            raise ValueError("objective 'diffusion_only' needs beta != 0 (its loss is beta * diffusion loss)")
        self.output_dir = Path(config.output_dir)
        self.accelerator = make_accelerator(
            config.mixed_precision,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            log_with=None if config.report_to == "none" else config.report_to,
            project_dir=str(self.output_dir),
        )
        need_ref = config.log_kl or self.objective.needs_reference or self.objective.shapes_reward_with_kl
        self.ref_model = copy.deepcopy(model).eval().requires_grad_(False) if need_ref else None
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("DiffusionRLTrainer: the model has no trainable parameters")
        optimizer = torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        configure_deepspeed(self.accelerator, config.minibatch_size, config.gradient_accumulation_steps)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        if self.ref_model is not None:  # in the policy's weight dtype (bf16 under DeepSpeed's bf16 engine)
            dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
            self.ref_model.to(self.accelerator.device, dtype)
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            summary = precision_summary(self.accelerator, model)
            (self.output_dir / PRECISION_FILE).write_text(json.dumps(summary, indent=1) + "\n")
        self.settings = ObjectiveSettings(
            config.alpha, config.beta, config.clip_range, config.rwr_temperature
        )
        self.scheduler.set_timesteps(config.num_inference_steps)
        self.stochastic = stochastic_step_indices(scheduler, config.eta)
        if not self.stochastic:
            raise ValueError("the scheduler's chain has no stochastic step to train (DDIM needs eta > 0)")
        self.step_stds = {i: step_std(scheduler, scheduler.timesteps[i], config.eta) for i in self.stochastic}
        self.trainable = [i for i in self.stochastic if self.step_stds[i] >= config.min_train_step_std]
        if not self.trainable:
            raise ValueError(
                f"min_train_step_std={config.min_train_step_std}: no step of the chain has that std (largest "
                f"{max(self.step_stds.values()):.3g})"
            )
        self.iteration = 0
        if config.report_to != "none":
            self.accelerator.init_trackers("diffusion_rl", config=asdict(config))

    # --- seeded choices -------------------------------------------------------------------------------------
    def _generator(self, salt: int) -> torch.Generator:
        rank = self.accelerator.process_index
        return torch.Generator().manual_seed(
            (self.config.seed * 1000003 + self.iteration * 7919 + salt * 104729 + rank * 15485863) % (2**63)
        )

    def prompts_for(self, iteration: int) -> list[Any]:
        """Consecutive slices of a per-epoch permutation of the prompts, seeded by the config; each prompt
        `samples_per_prompt` times in a row."""
        n, per = len(self.task.prompts), self.config.prompts_per_iteration
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        out = []
        for pos in range((iteration * world + rank) * per, (iteration * world + rank + 1) * per):
            epoch, index = divmod(pos, n)
            order = torch.randperm(
                n, generator=torch.Generator().manual_seed(self.config.seed * 7919 + epoch)
            )
            out += [self.task.prompts[int(order[index])]] * self.config.samples_per_prompt
        return out

    def _kept_steps(self, generator: torch.Generator) -> torch.Tensor:
        k = self.config.train_steps_per_trajectory
        pool = torch.tensor(self.trainable)
        if k == 0 or k >= len(pool):
            return pool
        return pool[torch.randperm(len(pool), generator=generator)[:k]].sort().values

    # --- rollout --------------------------------------------------------------------------------------------
    def rollout(self, stats: dict[str, list[float]]) -> list[Trajectories]:
        c = self.config
        model = self.accelerator.unwrap_model(self.model)
        model.eval()
        generator = self._generator(1)
        prompts = self.prompts_for(self.iteration)
        groups = []
        t0 = time.perf_counter()
        for start in range(0, len(prompts), c.sampling_batch_size):
            chunk = prompts[start : start + c.sampling_batch_size]
            with torch.no_grad():
                cond, shape = self.task.prepare(model, chunk)
            keep = self._kept_steps(generator)
            traj = sample_trajectories(
                model,
                self.ref_model,
                self.scheduler,
                chunk,
                cond,
                shape,
                keep,
                generator,
                c.eta,
                c.log_prob_reduction,
            )
            groups.append(traj)
        stats["time/sampling_s"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for traj in groups:
            with torch.no_grad():
                rewards = self.task.reward_fn(traj.x0, traj.prompts, traj.cond)
            rewards = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1).cpu()
            bad = torch.nonzero(~torch.isfinite(rewards)).flatten().tolist()
            if len(rewards) != len(traj):
                raise ValueError(f"reward function returned {len(rewards)} rewards for {len(traj)} samples")
            if bad:
                raise ValueError(
                    f"reward function returned a non-finite reward ({rewards[bad[0]].item()}) for sample "
                    f"{bad[0]} (prompt {traj.prompts[bad[0]]!r}) at iteration {self.iteration}"
                )
            traj.rewards = rewards
        stats["time/reward_s"].append(time.perf_counter() - t0)
        rewards = torch.cat([g.rewards for g in groups])
        shaped = rewards
        if self.objective.shapes_reward_with_kl:
            kl = torch.cat([g.kl.sum(1).cpu() for g in groups])
            shaped = kl_in_reward_shaping(rewards, kl, c.beta)
        prompt_ids = torch.arange(len(shaped)) // c.samples_per_prompt
        advantages = normalise_rewards(shaped, c.reward_normalisation, prompt_ids)
        offset = 0
        for g in groups:
            g.advantages = advantages[offset : offset + len(g)]
            offset += len(g)
        stats["reward"].extend(rewards.tolist())
        if groups[0].kl is not None:
            stats["kl"].extend(torch.cat([g.kl.sum(1).cpu() for g in groups]).tolist())
        stats["samples"].append(float(len(rewards)))
        return groups

    # --- losses ---------------------------------------------------------------------------------------------
    def _step_terms(
        self, traj: Trajectories, index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Current log-probs (B, K) of the kept steps, and the per-step KL to the reference when needed."""
        c = self.config
        cond = select_cond(traj.cond, index)
        device = self.accelerator.device
        logps, kls = [], []
        for k, t in enumerate(traj.timesteps):
            x_t = traj.x_t[k][index.to(traj.x_t.device)].to(device)
            x_prev = traj.x_prev[k][index.to(traj.x_prev.device)].to(device)
            tt = denoiser_timesteps(t, len(index), device)
            step = step_distribution(self.scheduler, self.model(x_t, tt, cond).float(), int(t), x_t, c.eta)
            logps.append(step_log_prob(step.mean, step.std, x_prev, c.log_prob_reduction))
            if self.objective.needs_reference:
                with torch.no_grad():
                    eps = self.ref_model(x_t, tt, cond).float()
                    ref = step_distribution(self.scheduler, eps, int(t), x_t, c.eta)
                kls.append(gaussian_kl(step.mean, ref.mean, step.std, c.log_prob_reduction))
        return torch.stack(logps, 1), (torch.stack(kls, 1) if kls else None)

    def diffusion_loss(self, generator: torch.Generator, groups: list[Trajectories]) -> torch.Tensor:
        """The denoising loss at `diffusion_timesteps` random timesteps, on real data or on the samples."""
        c = self.config
        device = self.accelerator.device
        if self.task.data is not None:
            idx = torch.randint(len(self.task.data), (c.diffusion_batch_size,), generator=generator)
            with torch.no_grad():
                x0, cond = self.task.prepare_data(
                    self.accelerator.unwrap_model(self.model), [self.task.data[i] for i in idx]
                )
        else:
            g = groups[int(torch.randint(len(groups), (1,), generator=generator))]
            x0, cond = g.x0.detach(), g.cond
        x0 = x0.to(device)
        total = x0.new_zeros(())
        n_train = self.scheduler.config.num_train_timesteps
        for _ in range(c.diffusion_timesteps):
            t = torch.randint(n_train, (x0.shape[0],), generator=generator).to(device)
            noise = torch.randn(x0.shape, generator=generator).to(device)
            x_t = self.scheduler.add_noise(x0, noise, t)
            pred = self.model(x_t, t, cond).float()
            total = total + noise_prediction_loss(
                pred, training_target(self.scheduler, x0, noise, t), c.diffusion_loss_kind
            )
        return total / max(c.diffusion_timesteps, 1)

    def update(self, groups: list[Trajectories], stats: dict[str, list[float]]) -> None:
        c = self.config
        t0 = time.perf_counter()
        self.model.eval()  # dropout off: re-scored steps match the sampled ones exactly
        generator = self._generator(2)
        wants_diffusion = self.objective.needs_diffusion_loss and c.beta != 0
        for _ in range(c.epochs_per_rollout):
            for traj in groups:
                order = torch.randperm(len(traj), generator=generator)
                for start in range(0, len(traj), c.minibatch_size):
                    index = order[start : start + c.minibatch_size]
                    with self.accelerator.accumulate(self.model):
                        logp, kl = self._step_terms(traj, index)
                        inputs = ObjectiveInputs(
                            logp=logp,
                            old_logp=traj.old_logp[index.to(traj.old_logp.device)].to(logp.device),
                            advantages=traj.advantages[index].to(logp.device),
                            diffusion_loss=self.diffusion_loss(generator, groups)
                            if wants_diffusion
                            else None,
                            kl=kl,
                        )
                        loss, mb_stats = self.objective.loss(inputs, self.settings)
                        self.accelerator.backward(loss)
                        # DeepSpeed clips inside its step (the accelerate config's gradient_clipping)
                        ds = is_deepspeed(self.accelerator)
                        if self.accelerator.sync_gradients and c.max_grad_norm and not ds:
                            gn = self.accelerator.clip_grad_norm_(self.model.parameters(), c.max_grad_norm)
                            stats["grad_norm"].append(float(gn))
                        self.optimizer.step()
                        self.optimizer.zero_grad()
                    stats["loss"].append(float(loss.detach()))
                    for k, v in mb_stats.items():
                        stats[k].append(float(v))
        if not wants_diffusion and self.task.data is not None:
            with torch.no_grad():
                stats["diffusion_loss"].append(float(self.diffusion_loss(generator, groups)))
        stats["time/update_s"].append(time.perf_counter() - t0)

    # --- one iteration --------------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """One iteration (rollout, reward, update); returns its logged metrics."""
        stats: dict[str, list[float]] = defaultdict(list)
        t0 = time.perf_counter()
        groups = self.rollout(stats)
        self.update(groups, stats)
        metrics: dict[str, float] = {"iteration": float(self.iteration)}
        for k, v in stats.items():
            metrics[k] = float(sum(v)) if k.startswith("time/") or k == "samples" else float(sum(v) / len(v))
        rewards = torch.tensor(stats["reward"])
        metrics["reward_std"] = float(rewards.std()) if len(rewards) > 1 else 0.0
        metrics["samples_per_s"] = metrics["samples"] / max(metrics["time/sampling_s"], 1e-9)
        metrics["time/iteration_s"] = time.perf_counter() - t0
        self.iteration += 1
        self._log(metrics)
        if self.config.save_every and self.iteration % self.config.save_every == 0:
            self.save_checkpoint()
        return metrics

    def _log(self, metrics: dict[str, float]) -> None:
        if self.accelerator.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with (self.output_dir / "metrics.jsonl").open("a") as f:
                f.write(
                    json.dumps(
                        {
                            k: (None if isinstance(v, float) and math.isnan(v) else v)
                            for k, v in metrics.items()
                        }
                    )
                    + "\n"
                )
        if self.config.report_to != "none":
            self.accelerator.log(metrics, step=self.iteration)

    def train(
        self, iterations: int, hooks: TrainHooks | None = None, label: str = "rl"
    ) -> list[dict[str, float]]:
        """Run until `iterations` in total, resuming from `output_dir` when a checkpoint is there. With
        `hooks`: one progress bar (loss, reward), and a stop request ends the run after the current iteration
        with its checkpoint written (`StopRequested`)."""
        return run_iterations(
            self,
            iterations,
            hooks,
            label,
            STATE_FILE,
            lambda m: {"loss": m.get("loss"), "reward": m.get("reward")},
        )

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        """Weights, optimizer and iteration, written atomically (a killed run keeps its last checkpoint).
        Under DeepSpeed the engine writes its weights and optimizer (every rank); the state file, written
        last by the main process, names that engine checkpoint."""
        path = Path(path or self.output_dir)
        main = self.accelerator.is_main_process
        state: dict[str, Any] = {"iteration": self.iteration, "config": asdict(self.config)}
        if is_deepspeed(self.accelerator):
            state["deepspeed_tag"] = f"iteration-{self.iteration}"
            self.model.save_checkpoint(str(path / "deepspeed"), tag=state["deepspeed_tag"])
        elif main:
            state["model"] = self.accelerator.unwrap_model(self.model).state_dict()
            state["optimizer"] = self.optimizer.state_dict()
        if main:
            path.mkdir(parents=True, exist_ok=True)
            save_checkpoint(path / STATE_FILE, state)
            for old in (path / "deepspeed").glob("iteration-*"):
                if old.name != state.get("deepspeed_tag"):
                    shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path or self.output_dir) / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no trainer checkpoint at {path}")
        state = load_checkpoint(path)
        if state["config"].get("objective") != self.config.objective:
            raise ValueError(
                f"{path}: checkpoint was written by objective {state['config'].get('objective')!r}, "
                f"this run uses {self.config.objective!r}"
            )
        if "deepspeed_tag" in state:
            if not is_deepspeed(self.accelerator):
                raise ValueError(f"{path} was written under DeepSpeed; resume it with DeepSpeed")
            self.model.load_checkpoint(str(path.parent / "deepspeed"), tag=state["deepspeed_tag"])
        else:
            if is_deepspeed(self.accelerator):
                raise ValueError(f"{path} was written without DeepSpeed; resume it the same way")
            self.accelerator.unwrap_model(self.model).load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.iteration = state["iteration"]
        self._drop_rows_past_checkpoint()

    def _drop_rows_past_checkpoint(self) -> None:
        """A run killed between logging an iteration and checkpointing it repeats that iteration: keep its
        metrics.jsonl to the iterations the checkpoint holds, so every iteration is logged once."""
        log = self.output_dir / "metrics.jsonl"
        if not self.accelerator.is_main_process or not log.is_file():
            return
        lines = log.read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line)["iteration"] < self.iteration]
        if len(kept) != len(lines):
            log.write_text("".join(line + "\n" for line in kept))
