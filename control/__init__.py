"""RL control sidecar: PPO-family algorithms on gymnasium Atari, MuJoCo and Box2D. Independent of `align`."""
