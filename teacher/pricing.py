"""Dollar cost of a request from a price table (USD per 1M input / output tokens), overridable by YAML."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# List prices per 1M tokens (input, output) as published by the providers on the date below; override with
# `--prices prices.yaml` (a mapping model -> [input, output]) when they change.
PRICES_CHECKED = "2025-06"
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-3-5-sonnet-latest": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-opus-4-0": (15.00, 75.00),
}
BATCH_DISCOUNT = 0.5  # both providers' batch APIs cost half


@dataclass
class PriceTable:
    prices: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def from_yaml(cls, path: str | Path) -> PriceTable:
        """The default prices with a YAML mapping `model: [usd per 1M input, usd per 1M output]` on top;
        `ValueError` naming the file (and the model) for anything else."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping model -> [input_per_1M, output_per_1M]")
        table = cls()
        for model, pair in data.items():
            ok = isinstance(pair, (list, tuple)) and len(pair) == 2
            try:
                prices = (float(pair[0]), float(pair[1])) if ok else None
            except (TypeError, ValueError):
                prices = None
            if prices is None or not all(math.isfinite(p) and p >= 0 for p in prices):
                raise ValueError(
                    f"{path}: price of {model!r} must be [input_per_1M, output_per_1M] (two numbers at least "
                    f"0), got {pair!r}"
                )
            table.prices[str(model)] = prices
        return table

    def cost(self, model: str, input_tokens: int, output_tokens: int, batch: bool = False) -> float | None:
        """Cost in USD, or None for a model without a price (local and offline teachers cost 0)."""
        if model.startswith("reference") or model in ("",):
            return 0.0
        price = self.prices.get(model)
        if price is None:
            return None
        usd = (input_tokens * price[0] + output_tokens * price[1]) / 1e6
        return usd * (BATCH_DISCOUNT if batch else 1.0)
