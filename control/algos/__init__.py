"""Control algorithms. Importing this package fills the registry: the core's four (PPO, SPPO, A2C, SA2C, in
`registry`) and those that register themselves in their own modules (each imports `registry`)."""

from control.algos import ndppo, ppg, registry  # noqa: F401
