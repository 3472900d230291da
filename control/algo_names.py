"""The built-in algorithms' names and descriptions, importable without torch: the CLI lists and checks
`--algo` from here before any work starts. `control.algos` registers one `Algorithm` per name (a test keeps
the two in step); algorithms registered by other packages are checked when training starts."""

from __future__ import annotations

BUILTIN_ALGORITHMS: dict[str, str] = {
    "ppo": "PPO (Schulman et al., 2017)",
    "sppo": "symmetric PPO (Byun & Perrault, 2025); alpha 0.5, beta 1.0, Z -1 unless set",
    "a2c": "A2C",
    "sa2c": "symmetric A2C (Byun & Perrault, 2025); alpha 0.5, beta 1.0, Z -1 unless set",
    "ppg": "Proximal Policy Gradient (Byun, Kim & Wang, 2020); not Phasic Policy Gradient",
    "ndppo": "normality-guided distributional PPO with exploration bonus (Byun & Perrault)",
    "ndppo-nobonus": "normality-guided distributional PPO, bonus off",
    "qppo": "PPO with a plain quantile-regression critic (baseline of Byun & Perrault)",
}
