"""The on-policy training loop shared by PPO, SPPO, A2C, SA2C and every registered extension. `train` reads top
to bottom like a CleanRL script: collect a rollout, compute advantages, update; the run folder, logs,
evaluation and checkpoints are `control.run`'s, envs `control.envs`'s, rollout sampling `control.samplers`'s.
What an algorithm adds (a critic, a reward term, extra losses and logs: ND-PPO, the AIRL transition policies)
comes in through `control.hooks.LoopHooks`.

A run folder records its config at the first start; a rerun with the same config resumes from
`checkpoint.pt` (a finished run is left as it is), a different config is refused. Ctrl-C or SIGTERM stops at
the end of the current iteration with a checkpoint (`StopRequested`, exit code 130 in the CLI).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from align.progress import Progress
from align.stopping import GracefulStop, StopRequested
from align.user_errors import UserError
from control.algos.registry import Algorithm, get
from control.config import TrainConfig, config_problems, with_algo_defaults
from control.device import require_native_bf16, resolve_device
from control.env_config import is_atari
from control.envs import VecNormalize, check_env_id, check_env_kwargs, has_continuous_actions, make_vec_env
from control.flat_adam import FlatAdam
from control.hooks import LoopContext, LoopHooks, Minibatch, overrides
from control.losses.advantages import gae
from control.networks import ActorCritic
from control.rollout import EnvState, Rollout, collect_rollout
from control.rollout_workers import ParallelRollouts, share_bounds, unsupported
from control.run import (
    RunLog,
    crossed,
    evaluate_and_log,
    export_policy,
    finish_run,
    load_checkpoint,
    open_run,
    restore_rng,
    rng_state,
    save_checkpoint,
    start_run,
)
from control.samplers import Sampler, make_sampler
from control.update import CompiledUpdate, actor_critic_loss, compile_mode, normalise_advantages

SYMMETRIC_BINS = 11  # the symmetric-loss authors discretise each continuous action dimension into 11 bins


def resolve_config(cfg: TrainConfig, algo: Algorithm) -> TrainConfig:
    """`cfg` with every unset field filled (the algorithm family's and env kind's defaults) and checked;
    bad values raise `UserError` naming their flags."""
    problems = config_problems(cfg)
    if problems:
        raise UserError("; ".join(problems))
    check_env_id(cfg.env_id)
    try:  # before the run folder is written (the loop checks again with the env's own observation kind)
        device = resolve_device(cfg.device, image_obs=is_atari(cfg.env_id))
        # `auto` puts image policies on a GPU: for other image envs (CarRacing) the device is known only later
        if cfg.bf16 and (cfg.device != "auto" or is_atari(cfg.env_id)):
            require_native_bf16(device)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    cfg = with_algo_defaults(cfg, algo.family, algo.symmetric)
    if cfg.discretize_bins is None:
        bins = SYMMETRIC_BINS if algo.symmetric and has_continuous_actions(cfg.env_config()) else 0
        cfg = dataclasses.replace(cfg, discretize_bins=bins)
    return cfg


def say(text: str, cfg: TrainConfig) -> None:
    if not cfg.quiet:
        print(f"[control] {text}", file=sys.stderr, flush=True)


def compute_advantages(
    buf: Rollout, sampler: Sampler, state: EnvState, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE advantages and returns of the rollout, bootstrapped from the value of the state it ended in."""
    return gae(
        torch.from_numpy(buf.rewards),
        torch.from_numpy(buf.values),
        torch.from_numpy(buf.dones),
        torch.from_numpy(sampler.value(state.obs)),
        torch.as_tensor(state.done, dtype=torch.float32),
        cfg.gamma,
        cfg.gae_lambda,
    )


@dataclass
class Learner:
    """What the update changes: the agent (and a hook's critic), the optimiser over both, and the compiled
    minibatch step when the run uses one (its optimiser is then a `FlatAdam`)."""

    agent: ActorCritic
    critic: torch.nn.Module | None
    optimizer: torch.optim.Optimizer | FlatAdam
    params: list[torch.nn.Parameter]
    compiled: CompiledUpdate | None = None

    def use_eager(self) -> None:
        """The eager loop from here on (a minibatch size failed to compile), with a `torch.optim.Adam`."""
        self.compiled = None
        if isinstance(self.optimizer, FlatAdam):
            self.optimizer = self.optimizer.torch_adam()


def flat_rollout(
    buf: Rollout, advantages: torch.Tensor, returns: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, ...]:
    """(obs, actions, log-probs, advantages, returns, values) of the rollout as tensors on `device`, flat
    over steps and envs; image observations laid out once as the CNN wants them (minibatch gathers keep it)."""
    obs_shape, act_shape = buf.obs.shape[2:], buf.actions.shape[2:]
    b_obs = torch.from_numpy(buf.obs).reshape(-1, *obs_shape).to(device)
    if b_obs.dim() == 4:
        b_obs = b_obs.contiguous(memory_format=torch.channels_last)
    others = (
        torch.from_numpy(buf.actions).reshape(-1, *act_shape),
        torch.from_numpy(buf.log_probs).reshape(-1),
        advantages.reshape(-1),
        returns.reshape(-1),
        torch.from_numpy(buf.values).reshape(-1),
    )
    return (b_obs, *(t.to(device) for t in others))


def make_learner(
    agent: ActorCritic,
    critic: torch.nn.Module | None,
    algo: Algorithm,
    cfg: TrainConfig,
    hooks: LoopHooks,
    buf: Rollout,
    device: torch.device,
    optimizer_state: dict[str, Any] | None,
    steps_ahead: int,
) -> Learner:
    """The optimiser (Adam, restored from `optimizer_state`) and the update: compiled over a `FlatAdam` when
    `compile_mode` says so and the compiled function is there (or compiles), else the eager loop with a
    `torch.optim.Adam`. Both keep the same checkpoint format."""
    params = list(agent.parameters()) + (list(critic.parameters()) if critic is not None else [])
    # fused: one kernel for all parameters (~2x faster steps for small MLPs on CPU)
    adam = {"lr": cfg.learning_rate, "eps": 1e-5, "fused": True}
    inputs = hooks.critic_loss_inputs({}, buf.rewards.size) if critic is not None else None
    eager_only = (critic is not None and inputs is None) or overrides(hooks, "extra_loss")
    mode = compile_mode(cfg, agent, eager_only, steps_ahead)
    if mode is not None:
        example = flat_rollout(buf, *(torch.zeros(buf.rewards.shape) for _ in range(2)), device)
        flat = FlatAdam(params, **adam)
        if optimizer_state is not None:
            flat.load_state_dict(optimizer_state)
        compiled = CompiledUpdate(agent, algo, cfg, flat, critic, hooks)
        if compiled.prepare(example, cfg.minibatch_size or len(example[0]), mode == "compile", inputs):
            return Learner(agent, critic, flat, params, compiled)
        return Learner(agent, critic, flat.torch_adam(), params)
    optimizer = torch.optim.Adam(params, **adam)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    return Learner(agent, critic, optimizer, params)


def update(
    learner: Learner,
    algo: Algorithm,
    cfg: TrainConfig,
    hooks: LoopHooks,
    buf: Rollout,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    device: torch.device,
) -> dict[str, Any]:
    """`cfg.update_epochs` passes over the rollout in shuffled minibatches; returns the last minibatch's logs
    (losses, entropy, the policy loss's stats). Compiled when possible, eager otherwise (hooks with a critic
    or extra losses, image policies, or a failed compile); a hook's critic loss written as a pure function
    (`critic_loss_inputs`) is part of the compiled update."""
    agent, critic = learner.agent, learner.critic
    rollout = flat_rollout(buf, advantages, returns, device)
    b_obs, b_act, b_logp, b_adv, b_ret, b_val = rollout
    b_extra = {k: torch.from_numpy(v).reshape(-1).to(device) for k, v in buf.extras.items()}
    use_extra_loss = overrides(hooks, "extra_loss")
    batch = b_obs.shape[0]
    minibatch = cfg.minibatch_size or batch
    critic_inputs = (
        hooks.critic_loss_inputs(b_extra, batch)
        if learner.compiled is not None and critic is not None
        else None
    )
    logs: dict[str, Any] = {}
    for _epoch in range(cfg.update_epochs):
        order = torch.randperm(batch, device=device)
        for start in range(0, batch, minibatch):
            idx = order[start : start + minibatch]
            step_logs = (
                learner.compiled(rollout, idx, critic_inputs) if learner.compiled is not None else None
            )
            if step_logs is None:  # the eager update: any hooks, image policies, or compiling failed
                learner.use_eager()
                optimizer = learner.optimizer
                terms = agent.distribution_terms(b_obs[idx], b_act[idx])
                adv = normalise_advantages(b_adv[idx], cfg)
                mb = None
                if critic is not None or use_extra_loss:
                    mb = Minibatch(
                        b_obs[idx],
                        b_act[idx],
                        terms[1],
                        b_logp[idx],
                        adv,
                        b_ret[idx],
                        b_val[idx],
                        {k: v[idx] for k, v in b_extra.items()},
                    )
                loss, step_logs = actor_critic_loss(
                    algo,
                    cfg,
                    terms,
                    b_logp[idx],
                    adv,
                    b_ret[idx],
                    b_val[idx],
                    hooks.critic_loss(mb) if critic is not None else None,
                )
                if use_extra_loss and (extra := hooks.extra_loss(mb)) is not None:
                    loss = loss + extra[0]
                    step_logs = {**step_logs, **extra[1]}
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(learner.params, cfg.max_grad_norm)
                optimizer.step()
            logs = step_logs
    return logs


def _resolved(cfg: TrainConfig, hooks: LoopHooks | None) -> tuple[Algorithm, TrainConfig, LoopHooks]:
    """The registered algorithm, the config with its defaults, and the hooks (`hooks`, else the algorithm's)."""
    algo = get(cfg.algo)
    cfg = resolve_config(cfg, algo)
    if hooks is None:
        hooks = algo.hooks(cfg) if algo.hooks is not None else LoopHooks()
    return algo, cfg, hooks


def refuse_workers(cfg: TrainConfig, hooks: LoopHooks, image_obs: bool, envs: Any = None) -> None:
    """Raise `UserError` naming --rollout-workers when the run cannot collect in worker processes (closing
    `envs`)."""
    why = unsupported(hooks, image_obs)
    if why is not None:
        if envs is not None:
            envs.close()
        raise UserError(
            f"--rollout-workers {cfg.rollout_workers} does not support {why}; use --rollout-workers 1"
        )


def check_run(cfg: TrainConfig, hooks: LoopHooks | None = None) -> None:
    """What `train` checks before it starts, without writing: raises `ConfigChanged` when `cfg.out_dir` holds a
    run recorded with other result-changing settings."""
    _, cfg, hooks = _resolved(cfg, hooks)
    open_run(cfg, hooks.config_extra(), write=False)


def train(cfg: TrainConfig, hooks: LoopHooks | None = None) -> dict[str, Any]:
    """Train until `cfg.total_steps` (rounded to whole rollouts); returns the summary (steps, steps/s, final
    evaluation). `hooks` default to the registered algorithm's (`Algorithm.hooks`), or none. Raises
    `UserError` for a bad config or env id, `ConfigChanged` for a run folder started with another config,
    `StopRequested` after saving when Ctrl-C/SIGTERM asked to stop."""
    algo, cfg, hooks = _resolved(cfg, hooks)
    if cfg.rollout_workers > 1:
        refuse_workers(cfg, hooks, image_obs=is_atari(cfg.env_id))
    check_env_kwargs(cfg.env_id, cfg.env_kwargs)  # here, not in check_run: files they name may come later
    out, record = open_run(cfg, hooks.config_extra())
    cfg = dataclasses.replace(cfg, out_dir=str(out))
    batch = cfg.num_envs * cfg.num_steps
    iterations = max(1, cfg.total_steps // batch)
    progress = record.data["progress"]
    done = progress.get("finished") and progress.get("step", 0) >= iterations * batch
    if done and (out / "summary.json").is_file():
        say(f"{out} already finished at step {progress.get('step', 0):,}; --overwrite trains it again", cfg)
        return json.loads((out / "summary.json").read_text())
    say(f"run folder: {out}", cfg)
    if iterations * batch != cfg.total_steps:
        say(
            f"--steps {cfg.total_steps:,} is not a whole number of rollouts of {batch:,} steps "
            f"({cfg.num_envs} env(s) x {cfg.num_steps}): training {iterations * batch:,} steps",
            cfg,
        )
    start_run(cfg, out, hooks.config_extra())

    workers = cfg.rollout_workers > 1
    local_envs = share_bounds(cfg.num_envs, cfg.rollout_workers)[0][1] if workers else cfg.num_envs
    envs = make_vec_env(
        cfg.env_config(), local_envs, cfg.seed, cfg.async_envs, step_info=overrides(hooks, "reward_term")
    )
    vector_obs = len(envs.single_observation_space.shape) == 1
    if workers:  # image observations show only now (Atari ids were refused above)
        refuse_workers(cfg, hooks, image_obs=not vector_obs, envs=envs)
    norm = (
        VecNormalize(envs.single_observation_space.shape, cfg.num_envs, cfg.gamma)
        if cfg.normalize and vector_obs
        else None
    )
    device = resolve_device(cfg.device, image_obs=not vector_obs)
    agent = ActorCritic(
        envs.single_observation_space, envs.single_action_space, tuple(cfg.hidden), cfg.bf16
    ).to(device)
    if cfg.bf16:
        try:
            require_native_bf16(device)
        except ValueError as exc:  # an image env under `auto` (resolve_config could not know its device)
            raise UserError(str(exc)) from None
    hooks.setup(LoopContext(cfg, envs, agent, norm, device, out))
    critic = hooks.critic.to(device) if hooks.critic is not None else None
    global_step, start_iteration = 0, 1
    ckpt, state = out / "checkpoint.pt", None
    if ckpt.is_file():
        state = load_checkpoint(ckpt, map_location=device)
        agent.load_state_dict(state["agent"])
        if critic is not None:
            critic.load_state_dict(state["critic"])
        hooks.load_state_dict(state.get("hooks") or {})
        global_step, start_iteration = state["global_step"], state["iteration"] + 1
        if norm is not None and state.get("norm"):
            norm.load_state_dict(state["norm"])
        restore_rng(state)
        say(f"resuming from step {global_step:,}", cfg)
    log = RunLog(out, global_step, track=cfg.track, wandb_project=cfg.wandb_project, config=record.config)

    sampler = make_sampler(agent, cfg.seed, critic)
    if state is not None and state.get("sampler"):
        sampler.load_state_dict(state["sampler"])
    buf = Rollout.allocate(
        cfg.num_steps,
        cfg.num_envs,
        envs.single_observation_space.shape,
        envs.single_action_space.shape,
        not vector_obs,
    )
    restored = hooks.restore_envs() if state is not None else None
    parallel = None
    if workers:  # each share resets its own envs at its first rollout
        worker_states = (state.get("sampler") or {}).get("workers") if state is not None else None
        reset_seed = cfg.seed + 1000 * (start_iteration - 1)
        parallel = ParallelRollouts(cfg, envs, sampler, norm is not None, reset_seed, worker_states)
        env_state = EnvState(None, None, None)
    elif restored is None:
        raw, _ = envs.reset(seed=cfg.seed + 1000 * (start_iteration - 1))
        env_state = EnvState(
            raw, norm.obs(raw) if norm else np.asarray(raw), np.zeros(cfg.num_envs, np.float32)
        )
    else:  # the envs as the checkpoint left them (their observations already counted by the normaliser)
        raw, done = restored
        env_state = EnvState(
            raw, norm.apply_obs(raw) if norm else np.asarray(raw), np.asarray(done, np.float32)
        )
    optimizer_state = state["optimizer"] if state is not None else None
    learner = make_learner(
        agent, critic, algo, cfg, hooks, buf, device, optimizer_state, cfg.total_steps - global_step
    )

    def checkpoint(iteration: int) -> None:
        log.flush()
        save_checkpoint(
            ckpt,
            {
                "agent": agent.state_dict(),
                "critic": critic.state_dict() if critic is not None else None,
                "optimizer": learner.optimizer.state_dict(),
                "global_step": global_step,
                "iteration": iteration,
                "norm": norm.state_dict() if norm else None,
                **rng_state(),
                "sampler": {
                    **sampler.state_dict(),
                    **({"workers": parallel.worker_states} if parallel is not None else {}),
                },
                "hooks": hooks.state_dict(),
                "config": dataclasses.asdict(cfg),
            },
        )
        export_policy(out, agent.state_dict(), norm.state_dict() if norm else None, global_step)
        record.set_progress(step=global_step, finished=False)

    def close_envs() -> None:
        if parallel is not None:
            parallel.close()  # closes `envs`, its first share's
        else:
            envs.close()

    use_after_update = overrides(hooks, "after_update")
    t0, steps_at_start = time.perf_counter(), global_step
    clock = {"env": 0.0, "policy": 0.0, "update": 0.0}  # seconds spent in each part, for the summary
    total = iterations * batch
    bar = Progress(total, f"{cfg.algo} {cfg.env_id}", initial=global_step, quiet=cfg.quiet)
    with GracefulStop() as stop, bar:
        for iteration in range(start_iteration, iterations + 1):
            if cfg.anneal_lr:
                learner.optimizer.param_groups[0]["lr"] = cfg.learning_rate * (
                    1.0 - (iteration - 1.0) / iterations
                )
            if parallel is not None:
                global_step = parallel.collect(norm, buf, env_state, log, global_step, clock)
            else:
                global_step = collect_rollout(
                    envs, sampler, norm, hooks, buf, env_state, cfg, log, global_step, clock
                )
            hooks.after_rollout()
            tick = time.perf_counter()
            advantages, returns = compute_advantages(buf, sampler, env_state, cfg)
            logs = update(learner, algo, cfg, hooks, buf, advantages, returns, device)
            sampler.sync()
            if use_after_update:
                hooks.after_update()
            clock["update"] += time.perf_counter() - tick

            sps = (global_step - steps_at_start) / (time.perf_counter() - t0)
            log.scalar("charts/SPS", sps, global_step)
            for k, v in logs.items():  # the last minibatch's losses, entropy and policy-loss stats
                log.scalar(f"losses/{k}", float(v), global_step)
            for k, v in hooks.logs().items():
                log.scalar(k, float(v), global_step)
            if crossed(global_step, cfg.eval_every, batch):
                evaluate_and_log(log, agent, cfg, norm, global_step)
            log.write_scalars()
            bar.update(batch, ret=log.recent_return(), sps=round(sps))
            if iteration == iterations or crossed(global_step, cfg.checkpoint_every, batch) or stop.requested:
                checkpoint(iteration)
            if stop.requested and iteration < iterations:
                close_envs()
                log.close()
                record.set_progress(step=global_step, finished=False, stopped=True)
                raise StopRequested(global_step, total)
    elapsed = time.perf_counter() - t0  # training only, without the final evaluation
    close_envs()
    if log.last_eval is not None and log.last_eval[0] == global_step:  # evaluated at this step already
        final = log.last_eval[1]
    else:
        final = evaluate_and_log(log, agent, cfg, norm, global_step)
    log.close()
    seconds = {**clock, "other": elapsed - sum(clock.values()), "total": elapsed}
    summary = finish_run(
        out, cfg, final, global_step, global_step - steps_at_start, elapsed, {"seconds": seconds}
    )
    record.set_progress(step=global_step, finished=True, stopped=False)
    return summary


__all__ = ["train", "collect_rollout", "compute_advantages", "update", "resolve_config"]
