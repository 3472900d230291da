"""Normality-guided distributional PPO (Byun & Perrault, arXiv 2208.13125) and the plain quantile-critic PPO.

Registered as ``--algo ndppo`` (normal quantile bars + exploration bonus), ``ndppo-nobonus`` (bars, no bonus)
and ``qppo`` (quantile critic regressed to sampled returns: the baseline). PPO's rollout / GAE / update loop of
:mod:`control.train`, with three changes: the critic is a :class:`QuantileCritic` (value = mean quantile), the
env rewards carry the normality bonus (added before reward normalisation), and the critic loss is the quantile Huber loss of
:class:`NormalityGuidance`. Envs, noise wrappers, normalisation, logging, evaluation and checkpoints are the
core's.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from control.algos.ndppo_critic import QuantileCritic
from control.algos.ndppo_guidance import NormalityGuidance, NormalityGuidanceSettings
from control.algos.registry import Algorithm, LossInputs, register
from control.config import TrainConfig, with_algo_defaults
from control.device import resolve_device
from control.envs import VecNormalize, make_vec_env
from control.losses.advantages import gae
from control.losses.policy import ppo_loss
from control.networks import ActorCritic
from control.run import (
    RunLog,
    crossed,
    evaluate_and_log,
    finish_run,
    restore_rng,
    rng_state,
    save_checkpoint,
    start_run,
)

__all__ = ["VARIANTS", "train_normality_guided"]

VARIANTS: dict[str, NormalityGuidanceSettings] = {
    "ndppo": NormalityGuidanceSettings(critic_mode="normal", bonus=True),
    "ndppo-nobonus": NormalityGuidanceSettings(critic_mode="normal", bonus=False),
    "qppo": NormalityGuidanceSettings(critic_mode="quantile", bonus=False),
}


class _QuantileValueAgent(torch.nn.Module):
    """The core's actor (its value head unused) beside a quantile critic; ``evaluate`` reuses ``evaluate()``."""

    def __init__(self, actor: ActorCritic, critic: QuantileCritic) -> None:
        super().__init__()
        self.actor, self.quantile_critic = actor, critic

    def distribution_terms(self, obs: torch.Tensor, action: torch.Tensor | None = None):
        return self.actor.distribution_terms(obs, action)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.quantile_critic.value(obs)


def train_normality_guided(
    cfg: TrainConfig, settings: NormalityGuidanceSettings | None = None
) -> dict[str, Any]:
    """Train ``cfg.algo`` (a key of :data:`VARIANTS`) until ``cfg.total_steps``; resumes from the run folder."""
    settings = settings or VARIANTS[cfg.algo]
    cfg = with_algo_defaults(cfg, "ppo")
    out = start_run(cfg, {"normality": dataclasses.asdict(settings)})

    envs = make_vec_env(cfg.env_config(), cfg.num_envs, cfg.seed, cfg.async_envs)
    obs_shape, act_shape = envs.single_observation_space.shape, envs.single_action_space.shape
    if len(obs_shape) != 1:
        raise ValueError(f"{cfg.algo} supports vector observations only; {cfg.env_id} has shape {obs_shape}")
    if resolve_device(cfg.device, image_obs=False).type != "cpu":
        raise ValueError(f"{cfg.algo} runs on the CPU (small MLPs); set --device cpu or auto")
    norm = VecNormalize(obs_shape, cfg.num_envs, cfg.gamma) if cfg.normalize else None
    critic = QuantileCritic(obs_shape[0], settings.num_quantiles, cfg.hidden[0], settings.sort_quantiles)
    agent = _QuantileValueAgent(
        ActorCritic(envs.single_observation_space, envs.single_action_space, tuple(cfg.hidden)), critic
    )
    params = list(agent.actor.actor.parameters()) + [
        p for n, p in agent.actor.named_parameters() if n == "log_std"
    ]
    optimizer = torch.optim.Adam(params + list(critic.parameters()), lr=cfg.learning_rate, eps=1e-5)
    guidance = NormalityGuidance(settings, critic, cfg.num_envs)
    batch, minibatch = cfg.num_envs * cfg.num_steps, cfg.minibatch_size or cfg.num_envs * cfg.num_steps
    iterations = max(1, cfg.total_steps // batch)
    global_step, start_iteration = 0, 1
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        agent.load_state_dict(state["agent"])
        optimizer.load_state_dict(state["optimizer"])
        guidance.clock.load_state_dict(state["clock"])
        global_step, start_iteration = state["global_step"], state["iteration"] + 1
        if norm is not None and state.get("norm"):
            norm.load_state_dict(state["norm"])
        restore_rng(state)
    log = RunLog(out, global_step)

    obs_buf = torch.zeros((cfg.num_steps, cfg.num_envs, *obs_shape))
    act_buf = torch.zeros((cfg.num_steps, cfg.num_envs, *act_shape))
    logp_buf, rew_buf, done_buf, val_buf, bonus_buf = (
        torch.zeros((cfg.num_steps, cfg.num_envs)) for _ in range(5)
    )
    tick_buf = torch.zeros((cfg.num_steps, cfg.num_envs), dtype=torch.long)

    raw, _ = envs.reset(seed=cfg.seed + 1000 * (start_iteration - 1))
    next_obs = torch.as_tensor(norm.obs(raw) if norm else raw, dtype=torch.float32)
    next_done = torch.zeros(cfg.num_envs)
    t0, steps_at_start = time.perf_counter(), global_step
    for iteration in range(start_iteration, iterations + 1):
        if cfg.anneal_lr:
            optimizer.param_groups[0]["lr"] = cfg.learning_rate * (1.0 - (iteration - 1.0) / iterations)

        # --- rollout: rewards carry the normality bonus, each step remembers its index in its episode ---
        for step in range(cfg.num_steps):
            global_step += cfg.num_envs
            obs_buf[step], done_buf[step] = next_obs, next_done
            with torch.no_grad():
                action, logp, *_ = agent.distribution_terms(next_obs)
                val_buf[step] = critic.value(next_obs)
            act_buf[step] = action.reshape(act_buf[step].shape)
            logp_buf[step] = logp
            bonus = guidance.bonus(next_obs)
            raw, reward, terminated, truncated, info = envs.step(action.numpy())
            done = np.logical_or(terminated, truncated)
            reward = np.asarray(reward, dtype=np.float64) + bonus
            if norm is not None:
                reward = norm.reward(reward, done)
            if truncated.any() and "final_obs" in info:  # bootstrap time limits with the quantile mean
                for i in np.flatnonzero(truncated & ~terminated):
                    final = info["final_obs"][i][None]
                    final = torch.as_tensor(norm.apply_obs(final) if norm else final, dtype=torch.float32)
                    with torch.no_grad():
                        reward[i] += cfg.gamma * critic.value(final).item()
            rew_buf[step] = torch.as_tensor(reward, dtype=torch.float32)
            bonus_buf[step], tick_buf[step] = (
                torch.as_tensor(bonus),
                torch.as_tensor(guidance.observe(reward, done)),
            )
            next_obs = torch.as_tensor(norm.obs(raw) if norm else raw, dtype=torch.float32)
            next_done = torch.as_tensor(done, dtype=torch.float32)
            log.finished_episodes(info, global_step)

        # --- advantages (value = mean of the quantiles) ---
        with torch.no_grad():
            advantages, returns = gae(
                rew_buf, val_buf, done_buf, critic.value(next_obs), next_done, cfg.gamma, cfg.gae_lambda
            )

        # --- update: PPO's clipped policy loss, quantile Huber critic loss ---
        b_obs, b_act, b_logp = (
            obs_buf.reshape(-1, *obs_shape),
            act_buf.reshape(-1, *act_shape),
            logp_buf.reshape(-1),
        )
        b_adv, b_ret, b_tick = advantages.reshape(-1), returns.reshape(-1), tick_buf.reshape(-1)
        for _epoch in range(cfg.update_epochs):
            order = torch.randperm(batch)
            for start in range(0, batch, minibatch):
                idx = order[start : start + minibatch]
                _, logp, _, entropy, _, _ = agent.distribution_terms(b_obs[idx], b_act[idx])
                adv = b_adv[idx]
                if cfg.norm_adv and len(idx) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss, stats = ppo_loss(logp, b_logp[idx], adv, cfg.clip_coef)
                v_loss = guidance.critic_loss(b_obs[idx], b_ret[idx], b_tick[idx])
                loss = pg_loss - cfg.ent_coef * entropy.mean() + cfg.vf_coef * v_loss
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(optimizer.param_groups[0]["params"], cfg.max_grad_norm)
                optimizer.step()

        sps = (global_step - steps_at_start) / (time.perf_counter() - t0)
        log.scalar("charts/SPS", sps, global_step)
        log.scalar("losses/policy_loss", pg_loss.item(), global_step)
        log.scalar("losses/value_loss", v_loss.item(), global_step)
        log.scalar("losses/entropy", entropy.mean().item(), global_step)
        log.scalar("normality/bonus_mean", bonus_buf.mean().item(), global_step)
        log.scalar("normality/sigma_0", guidance.clock.initial_variance() ** 0.5, global_step)
        log.scalar("normality/mean_episode_length", guidance.clock.mean_length(), global_step)
        for k, v in stats.items():
            log.scalar(f"losses/{k}", float(v), global_step)
        if crossed(global_step, cfg.eval_every, batch):
            evaluate_and_log(log, agent, cfg, norm, global_step)
        if iteration == iterations or crossed(global_step, cfg.checkpoint_every, batch):
            log.flush()
            save_checkpoint(
                ckpt,
                {
                    "agent": agent.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "global_step": global_step,
                    "iteration": iteration,
                    "norm": norm.state_dict() if norm else None,
                    "clock": guidance.clock.state_dict(),
                    **rng_state(),
                    "config": dataclasses.asdict(cfg),
                },
            )
    elapsed = time.perf_counter() - t0
    envs.close()
    final = evaluate_and_log(log, agent, cfg, norm, global_step)
    log.close()
    return finish_run(out, cfg, final, global_step, global_step - steps_at_start, elapsed)


def _not_used_directly(x: LossInputs, c: Any):  # the registry's policy_loss slot; the trainer calls ppo_loss
    return ppo_loss(x.log_prob, x.old_log_prob, x.advantages, c.clip_coef)


for _name, _description in [
    ("ndppo", "normality-guided distributional PPO with exploration bonus (Byun & Perrault)"),
    ("ndppo-nobonus", "normality-guided distributional PPO, bonus off"),
    ("qppo", "PPO with a plain quantile-regression critic (baseline of Byun & Perrault)"),
]:
    register(
        Algorithm(_name, "ppo", _not_used_directly, description=_description, trainer=train_normality_guided)
    )
