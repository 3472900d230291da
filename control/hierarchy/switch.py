"""The switch: a Double DQN with two actions (0: keep the transition policy, 1: switch to the next primitive),
rewarded +1 when the next subtask then succeeds and -1 when it fails (Byun & Perrault, ICLR 2022; paper: MLP
128-128, gamma 0.99, lr 1e-4, target update every 500 steps, epsilon 1 -> 0.01).

Double DQN (van Hasselt et al. 2016): the online network chooses the next action, the target network
evaluates it: y = r + gamma (1 - done) Q_target(s', argmax_a Q_online(s', a)). Training is resumable: the
networks, optimiser, replay buffer, counters and generators are checkpointed every `checkpoint_every` episodes.
"""

from __future__ import annotations

import csv
import json
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from align.progress import Progress
from align.stopping import GracefulStop, StopRequested
from control.hierarchy.controller import SwitchEnv
from control.run import keep_rows_up_to, load_checkpoint, save_checkpoint

EPISODE_COLUMNS = ("episode", "decisions", "outcome", "epsilon", "env_steps")
EXPLORATIONS = ("episode", "step")  # `SwitchSettings.exploration`


def double_dqn_targets(
    rewards: torch.Tensor,
    dones: torch.Tensor,
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """y = r + gamma (1 - done) Q_target(s', argmax_a Q_online(s', a)); (B,) from (B,) and (B, A)."""
    best = next_q_online.argmax(-1, keepdim=True)
    return rewards + gamma * (1.0 - dones) * next_q_target.gather(-1, best).squeeze(-1)


def epsilon_at(episode: int, start: float, end: float, decay_episodes: int) -> float:
    """Linear from `start` to `end` over `decay_episodes`, then `end`."""
    if decay_episodes <= 0:
        return end
    return max(end, start + (end - start) * episode / decay_episodes)


def exploratory_handover(settings: SwitchSettings, eps: float, rng: np.random.Generator) -> int | None:
    """With 'episode' exploration: the step at which an exploratory episode hands over (drawn uniformly from
    [0, explore_steps)) with probability `eps`, else None (the episode is greedy). None with 'step' exploration."""
    if settings.exploration == "episode" and rng.random() < eps:
        return int(rng.integers(settings.explore_steps))
    return None


class QNetwork(nn.Module):
    """ReLU MLP over (normalised observation, transition step / horizon) -> Q of keep / switch."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...] = (128, 128)):
        super().__init__()
        dims, layers = (obs_dim + 1, *hidden), []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(dims[-1], 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ReplayBuffer:
    """A ring buffer of (x, action, reward, x', done) with numpy storage (checkpointed whole)."""

    def __init__(self, capacity: int, dim: int):
        self.x, self.next_x = np.zeros((capacity, dim), np.float32), np.zeros((capacity, dim), np.float32)
        self.action, self.reward, self.done = (
            np.zeros(capacity, t) for t in (np.int64, np.float32, np.float32)
        )
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(self, x: np.ndarray, action: int, reward: float, next_x: np.ndarray, done: bool) -> None:
        i = self.pos
        self.x[i], self.action[i], self.reward[i], self.next_x[i], self.done[i] = (
            x,
            action,
            reward,
            next_x,
            done,
        )
        self.pos, self.size = (i + 1) % self.capacity, min(self.size + 1, self.capacity)

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(self.size, size=batch)
        return tuple(
            torch.from_numpy(a[idx]) for a in (self.x, self.action, self.reward, self.next_x, self.done)
        )

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("x", "next_x", "action", "reward", "done", "size", "pos")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


@dataclass
class SwitchSettings:
    """The switch's Double-DQN settings (paper values where it gives them)."""

    hidden: tuple[int, ...] = field(default=(128, 128), metadata={"help": "Q-network hidden sizes."})
    gamma: float = field(default=0.99, metadata={"help": "Discount."})
    learning_rate: float = field(default=1e-4, metadata={"help": "Adam learning rate."})
    target_update: int = field(
        default=500, metadata={"help": "Gradient steps between target-network copies."}
    )
    epsilon_start: float = field(default=1.0, metadata={"help": "Initial exploration rate."})
    epsilon_end: float = field(default=0.01, metadata={"help": "Final exploration rate."})
    epsilon_decay: float = field(
        default=0.5, metadata={"help": "Fraction of the episodes epsilon decays over."}
    )
    exploration: str = field(
        default="episode",
        metadata={
            "help": "'episode' (ours): with probability epsilon a whole episode explores, handing over at a step "
            "drawn uniformly from [0, explore_steps), so every hand-over time is tried whatever the greedy switch "
            "prefers; 'step': each decision is random with probability epsilon ('switch' with "
            "explore_switch_prob), which mixed with an early-switching greedy policy rarely tries late hand-overs."
        },
    )
    explore_steps: int = field(
        default=50, metadata={"help": "'episode' exploration: hand-over steps drawn from [0, explore_steps)."}
    )
    explore_switch_prob: float = field(
        default=0.1,
        metadata={
            "help": "'step' exploration: probability that an exploratory action is 'switch' (ours; 0.5 would end "
            "most exploratory episodes within two steps, so late hand-overs would never be tried)."
        },
    )
    episodes: int = field(default=400, metadata={"help": "Training episodes (hand-overs)."})
    buffer_size: int = field(default=50_000, metadata={"help": "Replay buffer capacity."})
    batch_size: int = field(default=64, metadata={"help": "Minibatch size."})
    learning_starts: int = field(default=200, metadata={"help": "Decisions collected before updates start."})
    updates_per_decision: int = field(default=1, metadata={"help": "Gradient steps per decision."})
    checkpoint_every: int = field(default=50, metadata={"help": "Episodes between checkpoints."})

    def __post_init__(self) -> None:
        if self.exploration not in EXPLORATIONS:
            raise ValueError(f"exploration={self.exploration!r}: expected one of {', '.join(EXPLORATIONS)}")
        if self.explore_steps < 1:
            raise ValueError(f"explore_steps={self.explore_steps}: expected at least 1")


class SwitchFeatures:
    """The Q-network's input: the observation normalised by `normalise` (the transition policy's frozen
    statistics) and the transition step divided by the horizon."""

    def __init__(self, normalise, horizon: int):
        self.normalise, self.horizon = normalise, horizon

    def __call__(self, obs: np.ndarray, t: int) -> np.ndarray:
        x = np.asarray(self.normalise(obs), np.float32).reshape(-1)
        return np.concatenate([x, [t / self.horizon]]).astype(np.float32)


def q_values_fn(net: QNetwork, features: SwitchFeatures):
    """`(obs, t) -> Q` for :class:`~control.hierarchy.controller.SwitchPolicy`."""

    @torch.no_grad()
    def q(obs: np.ndarray, t: int) -> np.ndarray:
        return net(torch.from_numpy(features(obs, t))[None])[0].numpy()

    return q


def train_switch(
    env: SwitchEnv, features: SwitchFeatures, settings: SwitchSettings, out: Path, seed: int
) -> dict[str, Any]:
    """Train the switch of one pair in `env`; writes `episodes.csv` (episode, decisions, outcome, epsilon,
    env steps), `checkpoint.pt` and `summary.json` under `out`; resumes from the checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x_dim = len(features(_first_obs(env, rng), 0))
    online, target = QNetwork(x_dim - 1, tuple(settings.hidden)), QNetwork(x_dim - 1, tuple(settings.hidden))
    target.load_state_dict(online.state_dict())
    optimizer = torch.optim.Adam(online.parameters(), lr=settings.learning_rate)
    buffer = ReplayBuffer(settings.buffer_size, x_dim)
    episode = decisions = updates = 0
    ckpt = out / "checkpoint.pt"
    if ckpt.is_file():
        state = load_checkpoint(ckpt)
        online.load_state_dict(state["online"])
        target.load_state_dict(state["target"])
        optimizer.load_state_dict(state["optimizer"])
        buffer.load_state_dict(state["buffer"])
        episode, decisions, updates = state["episode"], state["decisions"], state["updates"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        env.env_steps = state["env_steps"]
    keep_rows_up_to(out / "episodes.csv", episode, EPISODE_COLUMNS)
    log = (out / "episodes.csv").open("a", newline="")
    writer = csv.writer(log)
    if episode == 0 and log.tell() == 0:
        writer.writerow(EPISODE_COLUMNS)
    decay = int(settings.epsilon_decay * settings.episodes)

    def save() -> None:
        save_checkpoint(
            ckpt,
            {
                "online": online.state_dict(),
                "target": target.state_dict(),
                "optimizer": optimizer.state_dict(),
                "buffer": buffer.state_dict(),
                "episode": episode,
                "decisions": decisions,
                "updates": updates,
                "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "env_steps": env.env_steps,
                "settings": asdict(settings),
                "obs_dim": x_dim - 1,
            },
        )

    recent: deque[bool] = deque(maxlen=20)  # outcomes of the last episodes, for the progress line
    bar = Progress(settings.episodes, f"switch {out.name}", unit="episode", initial=episode)
    with GracefulStop() as stop, bar:
        while episode < settings.episodes:
            eps = epsilon_at(episode, settings.epsilon_start, settings.epsilon_end, decay)
            obs, done, t, reward = env.reset(rng), False, 0, 0.0
            handover_at = exploratory_handover(settings, eps, rng)
            while not done:
                x = features(obs, t)
                if handover_at is not None:
                    action = int(t >= handover_at)
                elif settings.exploration == "step" and rng.random() < eps:
                    action = int(rng.random() < settings.explore_switch_prob)
                else:
                    with torch.no_grad():
                        action = int(online(torch.from_numpy(x)[None]).argmax())
                obs, reward, done = env.step(action)
                t += 1
                buffer.add(x, action, reward, features(obs, t), done)
                decisions += 1
                if decisions >= settings.learning_starts:
                    for _ in range(settings.updates_per_decision):
                        _update(online, target, optimizer, buffer, settings, rng)
                        updates += 1
                        if updates % settings.target_update == 0:
                            target.load_state_dict(online.state_dict())
            episode += 1
            writer.writerow([episode, t, reward, round(eps, 4), env.env_steps])
            recent.append(reward > 0)
            bar.update(1, success=sum(recent) / len(recent), epsilon=eps)
            if episode % settings.checkpoint_every == 0 or episode == settings.episodes or stop.requested:
                log.flush()
                save()
            if stop.requested and episode < settings.episodes:
                log.close()
                raise StopRequested(episode, settings.episodes, "switch episode")
    log.close()
    outcomes = [float(r["outcome"]) for r in read_episodes(out / "episodes.csv")]
    tail = outcomes[-max(1, len(outcomes) // 5) :]
    summary = {
        "episodes": episode,
        "decisions": decisions,
        "env_steps": env.env_steps,
        "success_rate_last_20pct": float(np.mean([o > 0 for o in tail])),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def read_episodes(path: Path) -> list[dict[str, str]]:
    """The rows of a switch's `episodes.csv` (header: :data:`EPISODE_COLUMNS`)."""
    if not Path(path).is_file():
        return []
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def _first_obs(env: SwitchEnv, rng: np.random.Generator) -> np.ndarray:
    """One observation of the env (to size the network), drawn with a copy of the generator."""
    probe = np.random.default_rng(rng.integers(2**31))
    return env.reset(probe)


def _update(
    online: QNetwork,
    target: QNetwork,
    optimizer: torch.optim.Optimizer,
    buffer: ReplayBuffer,
    settings: SwitchSettings,
    rng: np.random.Generator,
) -> None:
    x, action, reward, next_x, done = buffer.sample(settings.batch_size, rng)
    with torch.no_grad():
        y = double_dqn_targets(reward, done, online(next_x), target(next_x), settings.gamma)
    q = online(x).gather(-1, action[:, None]).squeeze(-1)
    loss = F.smooth_l1_loss(q, y)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(online.parameters(), 10.0)
    optimizer.step()


def load_switch(out: Path, features: SwitchFeatures) -> tuple[QNetwork, Any]:
    """The trained online network of a switch run folder and its `(obs, t) -> Q` function."""
    path = Path(out) / "checkpoint.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no trained switch (run the 'switch' stage)")
    state = load_checkpoint(path)
    net = QNetwork(state["obs_dim"], tuple(state["settings"]["hidden"]))
    net.load_state_dict(state["online"])
    return net, q_values_fn(net, features)
