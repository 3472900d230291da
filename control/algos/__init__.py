"""Control algorithms: the registry (`control.algos.registry`) and their shared training loop."""
