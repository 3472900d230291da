"""Pure loss functions and advantage estimators for the control algorithms."""
