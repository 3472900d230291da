"""Adam's state for the compiled update, held without `torch.optim`.

Constructing a `torch.optim.Adam` imports dynamo (torch's optimizers wrap their methods in it lazily), about a
second of CPU per process; a run whose every update is the ahead-of-time compiled one (`control.update`) never
needs it. `FlatAdam` holds what such a run needs: the parameters, Adam's moments and step counts as views into
one flat buffer each (so the compiled function takes a handful of tensors), with `torch.optim.Adam`'s
`param_groups`, `state_dict()` and `load_state_dict()`, so its checkpoints are a `torch.optim.Adam`'s and either
resumes the other. The arithmetic is torch's own functional Adam, called by the compiled update; `torch_adam()`
hands the state over to a real `torch.optim.Adam` when a run falls back to the eager loop.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn


def adam_defaults() -> dict[str, Any]:
    """`torch.optim.Adam`'s hyperparameters and defaults, read from its signature: a param group here has
    exactly the keys of one of torch's."""
    parameters = inspect.signature(torch.optim.Adam.__init__).parameters
    return {name: p.default for name, p in parameters.items() if name not in ("self", "params")}


def flatten_into_views(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One contiguous buffer holding `tensors`, each of which becomes a view into it (their values kept)."""
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    offset = 0
    for t in tensors:
        t.data = flat[offset : offset + t.numel()].view_as(t)
        offset += t.numel()
    return flat


class FlatAdam:
    """`torch.optim.Adam`'s state over `params` (one param group, `hyperparameters` as its keyword arguments)
    in flat buffers: `params_flat`, `exp_avg`, `exp_avg_sq` (the parameters become views of the first) and
    `steps` (one count per parameter, all equal). No `step()`: the compiled update advances the buffers."""

    def __init__(self, params: list[nn.Parameter], **hyperparameters: Any):
        self.params = list(params)
        unknown = set(hyperparameters) - set(adam_defaults())
        if unknown:
            raise TypeError(f"FlatAdam: not torch.optim.Adam arguments: {sorted(unknown)}")
        self.param_groups = [{"params": self.params, **adam_defaults(), **hyperparameters}]
        with torch.no_grad():
            self.params_flat = flatten_into_views(self.params)
            self.exp_avg = torch.zeros_like(self.params_flat)
            self.exp_avg_sq = torch.zeros_like(self.params_flat)
        self.steps = torch.zeros(len(self.params), dtype=torch.float32, device=self.params_flat.device)

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        views, offset = [], 0
        for p in self.params:
            views.append(flat[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        return views

    def state_dict(self) -> dict[str, Any]:
        """What `torch.optim.Adam.state_dict()` returns after the same steps (state created at step 0)."""
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        moments = zip(self._views(self.exp_avg), self._views(self.exp_avg_sq), strict=True)
        state = {
            i: {"step": self.steps[i].clone(), "exp_avg": m, "exp_avg_sq": v}
            for i, (m, v) in enumerate(moments)
        }
        return {"state": state, "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a `torch.optim.Adam` (or `FlatAdam`) state dict of the same parameters, into the flat buffers."""
        (group,) = state_dict["param_groups"]
        if len(group["params"]) != len(self.params):
            raise ValueError(
                f"optimizer state of {len(group['params'])} parameters, this model has {len(self.params)}"
            )
        self.param_groups[0].update({k: v for k, v in group.items() if k != "params"})
        moments = zip(self._views(self.exp_avg), self._views(self.exp_avg_sq), strict=True)
        with torch.no_grad():
            for i, (m, v) in enumerate(moments):
                saved = state_dict["state"].get(i) or state_dict["state"].get(str(i))
                if saved is None:  # a torch optimizer before its first step
                    m.zero_()
                    v.zero_()
                    self.steps[i] = 0.0
                    continue
                m.copy_(saved["exp_avg"])
                v.copy_(saved["exp_avg_sq"])
                self.steps[i] = float(saved["step"])

    def torch_adam(self) -> torch.optim.Adam:
        """A `torch.optim.Adam` over the same parameters continuing from this state (for the eager loop)."""
        hyperparameters = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        optimizer = torch.optim.Adam(self.params, **hyperparameters)
        optimizer.load_state_dict(self.state_dict())
        return optimizer
