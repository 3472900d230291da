"""Pure RL math for language-model PPO: token rewards, KL, advantages and policy/value losses."""
