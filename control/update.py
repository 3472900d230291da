"""The minibatch update of the on-policy loop as one compiled function.

With a 64x64 MLP each minibatch of the eager update is about a hundred tiny tensor ops plus the autograd
engine's and the optimiser's Python bookkeeping, each costing more than its arithmetic. `CompiledUpdate` turns
a whole minibatch update (gather, forward, policy/value/entropy loss, backward via `torch.func.grad`,
gradient-norm clipping, Adam) into one `torch.compile`d function, so a minibatch costs one call. It makes the
same update as the eager loop in `control.train` (tests compare parameters and Adam state after several
steps); the eager loop stays for what it cannot express: hooks with their own critic or extra losses, and
image policies.
"""

from __future__ import annotations

import os
import types
import warnings

import torch
from torch import nn
from torch.optim.adam import adam

from control.algos.registry import Algorithm, LossInputs
from control.config import TrainConfig
from control.losses.policy import value_loss

COMPILE_CHOICES = ("auto", "on", "off")
# `compile="auto"` compiles when a run has at least this many steps ahead: compiling costs ~1 s of CPU per
# process once its code is cached on the machine (~5-30 s the first time), and saves ~0.1 ms per env step
# with PPO's defaults (320 minibatches per 2048 steps).
COMPILE_AUTO_MIN_STEPS = 100_000
BACKEND = "inductor"  # tests swap in "aot_eager" (same graph capture, no C++ code generation)


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


def should_compile(cfg: TrainConfig, agent: nn.Module, eager_only: bool, steps_ahead: int) -> bool:
    """Whether the loop uses `CompiledUpdate`: `cfg.compile` is on, or auto with a long enough run on the
    CPU; never for image policies or hooks that need the eager loop (`eager_only`)."""
    if cfg.compile not in COMPILE_CHOICES:
        raise ValueError(f"compile={cfg.compile!r}: expected one of {', '.join(COMPILE_CHOICES)}")
    if cfg.compile == "off" or agent.image or eager_only:
        return False
    if cfg.compile == "on":
        return True
    return next(agent.parameters()).device.type == "cpu" and steps_ahead >= COMPILE_AUTO_MIN_STEPS


def _flatten_into_views(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One contiguous buffer holding `tensors`, each of which becomes a view into it (their values kept)."""
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    offset = 0
    for t in tensors:
        t.data = flat[offset : offset + t.numel()].view_as(t)
        offset += t.numel()
    return flat


class CompiledUpdate:
    """One minibatch's update as a compiled pure function of the parameters, the Adam state and the rollout:
    the gradient (`torch.func.grad` of `actor_critic_loss`), clipped to `cfg.max_grad_norm`, then the Adam step
    of `torch.optim.adam.adam` (torch's own functional Adam), in place.

    The agent's parameters and the optimizer's per-parameter Adam state become views into one flat buffer each,
    so the compiled function takes and updates a handful of tensors instead of dozens (less tracing, fewer
    kernels). The optimizer keeps its own per-parameter form: its `state_dict` (checkpoints) and `step()` (the
    eager loop) read and write the same memory. Build it after any checkpoint is loaded (loading replaces the
    optimizer's state tensors).

    If compiling fails (no C++ compiler for inductor, an op dynamo cannot capture in a registered loss), the
    call warns, returns None and the caller goes on with the eager loop (which raises a loss's own errors)."""

    def __init__(self, agent: nn.Module, algo: Algorithm, cfg: TrainConfig, optimizer: torch.optim.Adam):
        self.agent, self.algo, self.cfg = agent, algo, cfg
        (self.group,) = optimizer.param_groups
        named = dict(agent.named_parameters())
        if [id(p) for p in named.values()] != [id(p) for p in self.group["params"]]:
            raise ValueError("CompiledUpdate: the optimizer must hold exactly the agent's parameters")
        if any(not p.is_contiguous() for p in named.values()):
            raise ValueError("CompiledUpdate: parameters must be contiguous (MLP policies)")
        for p in named.values():  # Adam's lazy state, created as its first step() would
            if not optimizer.state[p]:
                optimizer.state[p].update(
                    step=torch.zeros((), dtype=torch.float32, device=p.device),
                    exp_avg=torch.zeros_like(p),
                    exp_avg_sq=torch.zeros_like(p),
                )
        self.names = list(named)
        self.shapes = [p.shape for p in named.values()]
        states = [optimizer.state[p] for p in named.values()]
        with torch.no_grad():
            self.flat = [
                _flatten_into_views(list(named.values())),
                _flatten_into_views([s["exp_avg"] for s in states]),
                _flatten_into_views([s["exp_avg_sq"] for s in states]),
            ]
            # the per-parameter step counts (equal) as views of one vector; the compiled step advances all
            steps = torch.stack([s["step"] for s in states])
            for i, s in enumerate(states):
                s["step"] = steps[i]
        self.steps = steps
        self.lr = torch.zeros((), dtype=torch.float32, device=steps.device)
        # cpp_wrapper: inductor calls the graph's kernels from generated C++ instead of Python (~12% less time
        # per minibatch here; compiling the first time takes longer, later runs load it from the cache).
        # cpp.vec_isa_ok: trust the CPU's reported vector ISA instead of building and loading a probe library
        # per ISA in child processes, which every process repeats (~0.8 s of CPU, most of a cached compile's
        # cost beside tracing); a compiler that cannot build it fails the compile, and we fall back to eager.
        # TORCHINDUCTOR_VEC_ISA_OK set by the user wins.
        options = {"cpp_wrapper": True} if BACKEND == "inductor" else None
        if options is not None and "TORCHINDUCTOR_VEC_ISA_OK" not in os.environ:
            options["cpp.vec_isa_ok"] = True
        # dynamo keeps compiled graphs per code object, at most 8 variants: a process training many runs (a
        # sweep worker) would run out, so each instance compiles a copy of `_update` with its own code object
        update = CompiledUpdate._update
        fresh = types.FunctionType(update.__code__.replace(), update.__globals__, update.__name__)
        self.compiled = torch.compile(
            types.MethodType(fresh, self), fullgraph=True, dynamic=False, backend=BACKEND, options=options
        )

    def _views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        views, offset = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            views[name] = flat[offset : offset + shape.numel()].view(shape)
            offset += shape.numel()
        return views

    def _update(
        self,
        flat: list[torch.Tensor],
        steps: torch.Tensor,
        lr: torch.Tensor,
        rollout: tuple[torch.Tensor, ...],
        idx: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        obs, actions, old_log_prob, advantages, returns, old_values = (t[idx] for t in rollout)
        advantages = normalise_advantages(advantages, self.cfg)

        def loss(params: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            terms = torch.func.functional_call(self.agent, self._views(params), (obs, actions))
            return actor_critic_loss(
                self.algo, self.cfg, terms, old_log_prob, advantages, returns, old_values
            )

        params, exp_avg, exp_avg_sq = flat
        grad, logs = torch.func.grad(loss, has_aux=True)(params)
        grad = clip_by_total_norm({"all": grad}, self.cfg.max_grad_norm)["all"]
        step = steps[0]
        g = self.group
        adam(
            [params],
            [grad],
            [exp_avg],
            [exp_avg_sq],
            [],
            [step],
            foreach=False,  # the foreach version reads the step count as a Python number: a recompile per step
            capturable=False,
            differentiable=False,
            fused=None,
            amsgrad=False,
            beta1=g["betas"][0],
            beta2=g["betas"][1],
            lr=lr,
            weight_decay=g["weight_decay"],
            eps=g["eps"],
            maximize=False,
        )
        steps.copy_(step.expand_as(steps))
        return logs

    def __call__(
        self, rollout: tuple[torch.Tensor, ...], idx: torch.Tensor
    ) -> dict[str, torch.Tensor] | None:
        """`rollout`: (obs, actions, old log-probs, advantages, returns, old values), flat over the batch;
        `idx`: the minibatch's indices. Updates the parameters and Adam's state at the optimizer's current
        learning rate; returns the minibatch's logs (losses, entropy, policy-loss stats), or None when
        compiling failed (nothing was updated then)."""
        self.lr.fill_(self.group["lr"])
        try:
            with torch.no_grad():
                return self.compiled(self.flat, self.steps, self.lr, rollout, idx)
        except Exception as exc:  # noqa: BLE001  (whatever the compiler raises: fall back, say why)
            reason = " ".join(str(exc).split())[:300]
            warnings.warn(
                f"torch.compile of the update failed ({type(exc).__name__}: {reason}); "
                "continuing with the eager update (--compile off skips the attempt)",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
