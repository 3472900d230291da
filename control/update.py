"""The minibatch update of the on-policy loop as one compiled function.

With a 64x64 MLP each minibatch of the eager update is about a hundred tiny tensor ops plus the autograd
engine's and the optimiser's Python bookkeeping, each costing more than its arithmetic. `CompiledUpdate` turns
a whole minibatch update (gather, forward, policy/value/entropy loss, backward via `torch.func.grad`,
gradient-norm clipping, Adam) into one `torch.compile`d function, so a minibatch costs one call. It makes the
same update as the eager loop in `control.train` (tests compare parameters and Adam state after several
steps). A hook's critic (ND-PPO's quantile critic) is part of it when the hook writes its loss as a pure
function (`LoopHooks.critic_loss_inputs` + `critic_loss_from`); the eager loop stays for what it cannot
express: other hooks' critics, extra losses, and image policies.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.optim.adam import adam

from control import aot_cache
from control.algos.registry import Algorithm, LossInputs
from control.config import TrainConfig
from control.flat_adam import FlatAdam
from control.losses.policy import value_loss

if TYPE_CHECKING:
    from control.hooks import LoopHooks

COMPILE_CHOICES = ("auto", "on", "off")
# `compile="auto"` compiles when a run has at least this many steps ahead: compiling costs ~1 s of CPU per
# process once its code is cached on the machine (~5-30 s the first time), and saves ~0.1 ms per env step
# with PPO's defaults (320 minibatches per 2048 steps).
COMPILE_AUTO_MIN_STEPS = 100_000
# what the traced update runs (files and folders of the control package): editing them compiles it afresh
TRACED_SOURCES = ("update.py", "networks.py", "distributions.py", "device.py", "losses", "algos")
CRITIC = "hook_critic."  # prefix of a hook critic's parameter names among the update's parameters
BACKEND = "aoti"  # tests swap in "fx": the same traced graph run as is (no C++ compiler, nothing cached)


def normalise_advantages(advantages: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Per-minibatch whitening (PPO's `norm_adv`); a minibatch of one is left alone."""
    if cfg.norm_adv and advantages.shape[0] > 1:
        return (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    return advantages


def actor_critic_loss(
    algo: Algorithm,
    cfg: TrainConfig,
    terms: tuple,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor,
    v_loss: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one minibatch: the algorithm's policy loss - ent_coef * entropy + vf_coef * value loss
    (clipped around the old values with `clip_vloss`; `v_loss` replaces it, e.g. a hook's critic loss), from
    `ActorCritic.distribution_terms(obs, actions)` and normalised `advantages`. Returns (loss, logs) with the
    policy/value losses, mean entropy and the policy loss's own stats."""
    _, log_prob, prob, entropy, value, _ = terms
    pg_loss, stats = algo.policy_loss(LossInputs(log_prob, old_log_prob, advantages, prob), cfg)
    if v_loss is None:
        v_loss = value_loss(value, returns, old_values, cfg.clip_coef if cfg.clip_vloss else None)
    entropy = entropy.mean()
    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
    logs = {"policy_loss": pg_loss.detach(), "value_loss": v_loss.detach(), "entropy": entropy.detach()}
    return loss, {**logs, **stats}


def clip_by_total_norm(grads: dict[str, torch.Tensor], max_norm: float) -> dict[str, torch.Tensor]:
    """`torch.nn.utils.clip_grad_norm_` as a pure function: grads scaled by min(1, max_norm / (norm + 1e-6))."""
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
    scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    return {k: g * scale for k, g in grads.items()}


def compile_mode(cfg: TrainConfig, agent: nn.Module, eager_only: bool, steps_ahead: int) -> str | None:
    """How the loop updates: None (the eager loop), "compile" (the compiled update, compiled now if this machine
    has not compiled it yet) or "cached" (the compiled update if compiled already, else the eager loop).
    `--compile on` compiles; `auto` compiles MLP runs on the CPU with enough steps ahead to repay a first
    compile and uses an already compiled update for shorter ones; never for image policies or hooks that need
    the eager loop (`eager_only`)."""
    if cfg.compile not in COMPILE_CHOICES:
        raise ValueError(f"compile={cfg.compile!r}: expected one of {', '.join(COMPILE_CHOICES)}")
    if cfg.compile == "off" or agent.image or eager_only:
        return None
    if cfg.compile == "on":
        return "compile"
    if next(agent.parameters()).device.type != "cpu":
        return None
    return "compile" if steps_ahead >= COMPILE_AUTO_MIN_STEPS else "cached"


class CompiledUpdate:
    """One minibatch's update as an ahead-of-time compiled pure function of the parameters, the Adam state and
    the rollout: the gradient (`torch.func.grad` of `actor_critic_loss`), clipped to `cfg.max_grad_norm`, then
    the Adam step of `torch.optim.adam.adam` (torch's own functional Adam, in its tensor-step form), on the flat
    buffers of a `FlatAdam`. With a `critic` (a hook's, replacing the agent's value head) the parameters are the
    agent's then the critic's, and the value loss is `hooks.critic_loss_from` on the critic's output.

    `prepare` loads the compiled function from `control.aot_cache` (milliseconds, no dynamo) or compiles it with
    AOTInductor (once per machine and configuration). If compiling fails (no C++ compiler, an op that cannot be
    traced in a registered loss), it warns and the caller goes on with the eager loop (which raises a loss's
    own errors)."""

    def __init__(
        self,
        agent: nn.Module,
        algo: Algorithm,
        cfg: TrainConfig,
        optimizer: FlatAdam,
        critic: nn.Module | None = None,
        hooks: LoopHooks | None = None,
    ):
        if critic is not None and hooks is None:
            raise ValueError("CompiledUpdate: a critic needs the hooks whose critic_loss_from it trains with")
        self.agent, self.algo, self.cfg, self.optimizer = agent, algo, cfg, optimizer
        self.critic, self.hooks = critic, hooks
        (self.group,) = optimizer.param_groups
        named = dict(agent.named_parameters())
        self.agent_names = list(named)
        critic_named = dict(critic.named_parameters()) if critic is not None else {}
        self.critic_names = {f"{CRITIC}{n}": n for n in critic_named}  # name in the update -> in the critic
        named.update({f"{CRITIC}{n}": p for n, p in critic_named.items()})
        if [id(p) for p in named.values()] != [id(p) for p in optimizer.params]:
            raise ValueError(
                "CompiledUpdate: the optimizer must hold exactly the agent's parameters, then the critic's"
            )
        self.names = list(named)
        self.input_names: list[str] = []  # the critic loss's per-sample inputs, in the compiled call's order
        self.shapes = [p.shape for p in named.values()]
        self.lr = torch.zeros((), dtype=torch.float32, device=optimizer.steps.device)
        self.compiled: dict[int, aot_cache.Compiled] = {}  # per minibatch size (the last one may be smaller)

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        views, offset = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            views[name] = flat[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        return views

    def _update(
        self,
        cfg: TrainConfig,
        params: torch.Tensor,
        exp_avg: torch.Tensor,
        exp_avg_sq: torch.Tensor,
        step: torch.Tensor,
        lr: torch.Tensor,
        *rollout_and_idx: torch.Tensor,
    ) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
        """The pure update: new (params, exp_avg, exp_avg_sq, step) and the minibatch's logs."""
        *rollout, idx = rollout_and_idx
        obs, actions, old_log_prob, advantages, returns, old_values = (t[idx] for t in rollout[:6])
        inputs = {n: t[idx] for n, t in zip(self.input_names, rollout[6:], strict=True)}
        advantages = normalise_advantages(advantages, cfg)

        def loss(p: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            views = self._views(p)
            agent_views = {n: views[n] for n in self.agent_names}
            terms = torch.func.functional_call(self.agent, agent_views, (obs, actions))
            v_loss = None
            if self.critic is not None:
                critic_views = {own: views[n] for n, own in self.critic_names.items()}
                output = torch.func.functional_call(self.critic, critic_views, (obs,))
                v_loss = self.hooks.critic_loss_from(output, returns, inputs)
            return actor_critic_loss(
                self.algo, cfg, terms, old_log_prob, advantages, returns, old_values, v_loss
            )

        grad, logs = torch.func.grad(loss, has_aux=True)(params)
        grad = clip_by_total_norm({"all": grad}, cfg.max_grad_norm)["all"]
        params, exp_avg, exp_avg_sq, step = (t.clone() for t in (params, exp_avg, exp_avg_sq, step))
        g = self.group
        adam(
            [params],
            [grad],
            [exp_avg],
            [exp_avg_sq],
            [],
            [step],
            foreach=False,
            capturable=False,
            # the tensor-step form of the same update (as with CUDA graphs): the step count stays a tensor
            # instead of a Python number read once at tracing
            differentiable=True,
            fused=None,
            amsgrad=False,
            beta1=g["betas"][0],
            beta2=g["betas"][1],
            lr=lr,
            weight_decay=g["weight_decay"],
            eps=g["eps"],
            maximize=False,
        )
        return (params, exp_avg, exp_avg_sq, step), logs

    def _inputs(
        self, rollout: tuple[torch.Tensor, ...], idx: torch.Tensor, critic_inputs: dict[str, torch.Tensor]
    ) -> list[torch.Tensor]:
        if sorted(critic_inputs) != self.input_names:
            raise ValueError(
                f"CompiledUpdate: critic inputs {sorted(critic_inputs)}, prepared for {self.input_names}"
            )
        opt = self.optimizer
        extra = [critic_inputs[n] for n in self.input_names]
        return [opt.params_flat, opt.exp_avg, opt.exp_avg_sq, opt.steps[0], self.lr, *rollout, *extra, idx]

    def _compile(
        self,
        rollout: tuple[torch.Tensor, ...],
        idx: torch.Tensor,
        critic_inputs: dict[str, torch.Tensor],
        compile_missing: bool,
    ) -> aot_cache.Compiled | None:
        from torch.fx.experimental.proxy_tensor import make_fx

        inputs = self._inputs(rollout, idx, critic_inputs)

        def trace(cfg: aot_cache.ConfigReads) -> tuple[torch.fx.GraphModule, list[str]]:
            names: list[str] = []

            def flat_update(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
                state, logs = self._update(cfg, *tensors)
                names[:] = list(logs)
                return (*state, *logs.values())

            return make_fx(flat_update, tracing_mode="fake")(*inputs), names

        g = self.group
        key = {
            "agent": [
                type(self.agent).__name__,
                getattr(self.agent, "kind", None),
                getattr(self.agent, "nvec", None),
            ],
            "parameters": [[n, list(s)] for n, s in zip(self.names, self.shapes, strict=True)],
            "inputs": [[list(t.shape), str(t.dtype), str(t.device)] for t in inputs],
            "algo": self.algo.name,
            "critic": None
            if self.critic is None
            else [type(self.critic).__name__, self.input_names, self.hooks.config_extra()],
            "adam": [g["betas"], g["eps"], g["weight_decay"], g["amsgrad"], g["maximize"]],
            "sources": aot_cache.source_digest(
                *TRACED_SOURCES,
                aot_cache.module_file(self.algo.policy_loss),
                aot_cache.module_file(type(self.hooks).critic_loss_from) if self.critic is not None else None,
            ),
        }
        return aot_cache.compiled("ppo_update", trace, inputs, key, self.cfg, BACKEND, compile_missing)

    def prepare(
        self,
        rollout: tuple[torch.Tensor, ...],
        minibatch: int,
        compile_missing: bool = True,
        critic_inputs: dict[str, torch.Tensor] | None = None,
    ) -> bool:
        """Load (or, with `compile_missing`, compile) the update for minibatches of `minibatch` samples and for
        the smaller last one, for rollouts shaped like `rollout` (and a critic loss's `critic_inputs`, per
        sample, as `hooks.critic_loss_inputs` gives them); False when it is not there (not compiled yet, or
        compiling failed, with a warning): then the caller uses the eager loop."""
        critic_inputs = critic_inputs or {}
        self.input_names = sorted(critic_inputs)
        batch = len(rollout[0])
        sizes = sorted({min(minibatch, batch), batch % minibatch} - {0})
        return all(self._prepare_size(rollout, size, critic_inputs, compile_missing) for size in sizes)

    def _prepare_size(
        self,
        rollout: tuple[torch.Tensor, ...],
        size: int,
        critic_inputs: dict[str, torch.Tensor],
        compile_missing: bool,
    ) -> bool:
        idx = torch.arange(size, device=rollout[0].device)
        try:
            found = self._compile(rollout, idx, critic_inputs, compile_missing)
        except Exception as exc:  # noqa: BLE001  (whatever the compiler raises: fall back, say why)
            reason = " ".join(str(exc).split())[:300]
            warnings.warn(
                f"compiling the update failed ({type(exc).__name__}: {reason}); "
                "continuing with the eager update (--compile off skips the attempt)",
                RuntimeWarning,
                stacklevel=3,
            )
            return False
        if found is not None:
            self.compiled[size] = found
        return found is not None

    def __call__(
        self,
        rollout: tuple[torch.Tensor, ...],
        idx: torch.Tensor,
        critic_inputs: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor] | None:
        """`rollout`: (obs, actions, old log-probs, advantages, returns, old values), flat over the batch, and
        the critic loss's per-sample `critic_inputs`; `idx`: the minibatch's indices. Updates the parameters
        and Adam's state at the optimizer's current learning rate; returns the minibatch's logs (losses,
        entropy, policy-loss stats), or None when a minibatch size it was not prepared for failed to compile
        (nothing was updated then)."""
        critic_inputs = critic_inputs or {}
        if len(idx) not in self.compiled and not self._prepare_size(rollout, len(idx), critic_inputs, True):
            return None
        compiled = self.compiled[len(idx)]
        self.lr.fill_(self.group["lr"])
        outputs = compiled.run(self._inputs(rollout, idx, critic_inputs))
        opt = self.optimizer
        for target, value in zip((opt.params_flat, opt.exp_avg, opt.exp_avg_sq), outputs[:3], strict=True):
            target.copy_(value)
        opt.steps.copy_(outputs[3].expand_as(opt.steps))
        return dict(zip(compiled.outputs, outputs[4:], strict=True))
