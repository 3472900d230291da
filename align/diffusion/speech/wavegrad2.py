"""A WaveGrad 2-style text-to-speech model (Chen et al. 2021): a character encoder, a duration predictor with
Gaussian upsampling to frames, and a diffusion decoder that denoises the raw waveform conditioned on them.

It is a denoiser eps(x_t, t, cond) for `align.diffusion`: `prepare(texts)` predicts durations once (the
conditioning `TTSCondition`), and `forward(x_t, t, cond)` runs encoder, upsampling and decoder with gradients.
Whatever dtype its weights are in (DeepSpeed's bf16 engine casts them), it takes float32 waveforms and
conditioning and returns float32 noise predictions and durations; the Gaussian upsampling's frame positions
and weights are computed in float32 (bf16 cannot tell frame 256 from 257).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from align.diffusion.speech.tts_text import CHARACTERS, batch_text

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class WaveGrad2Config:
    """Sizes of the TTS model; defaults are the tiny CPU demo's, `paper` sizes are in recipes/configs."""

    sample_rate: int = field(default=22050, metadata={"help": "Waveform rate in Hz (LJSpeech: 22050)."})
    upsample_factors: list[int] = field(
        default_factory=lambda: [4, 4, 4], metadata={"help": "Frame-to-waveform upsampling; product = hop."}
    )
    encoder_dim: int = field(default=64, metadata={"help": "Character embedding / encoder width."})
    encoder_layers: int = field(default=3, metadata={"help": "Convolutions before the BiLSTM (paper: 3)."})
    encoder_kernel: int = field(default=5, metadata={"help": "Encoder convolution kernel (paper: 5)."})
    dropout: float = field(default=0.1, metadata={"help": "Encoder dropout (paper: 0.5)."})
    decoder_channels: list[int] = field(
        default_factory=lambda: [64, 48, 32], metadata={"help": "Channels of the upsampling blocks."}
    )
    time_embedding_dim: int = field(default=64, metadata={"help": "Sinusoidal timestep embedding width."})
    num_train_timesteps: int = field(default=1000, metadata={"help": "Diffusion steps T (paper: 1000)."})
    beta_start: float = field(default=1e-6, metadata={"help": "First beta (DLPO code: 1e-6)."})
    beta_end: float = field(
        default=0.01, metadata={"help": "Last beta of the linear schedule (DLPO code: 0.01)."}
    )

    def __post_init__(self) -> None:
        if len(self.decoder_channels) != len(self.upsample_factors):
            raise ValueError("decoder_channels and upsample_factors must have the same length")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_factors)

    def scheduler(self):
        """The DDPM scheduler the model is trained and sampled with (linear betas, x_0 clipped to [-1, 1])."""
        from diffusers import DDPMScheduler

        return DDPMScheduler(
            num_train_timesteps=self.num_train_timesteps,
            beta_start=self.beta_start,
            beta_end=self.beta_end,
            beta_schedule="linear",
            clip_sample=True,
        )


@dataclass
class TTSCondition:
    """What a waveform is conditioned on: character ids, fixed durations (frames per character) and lengths."""

    tokens: torch.Tensor  # (B, N)
    token_lengths: torch.Tensor  # (B,)
    durations: torch.Tensor  # (B, N) float frames, 0 on padding
    frame_lengths: torch.Tensor  # (B,) int

    def select(self, index: torch.Tensor) -> TTSCondition:
        return TTSCondition(
            *(getattr(self, f)[index] for f in ("tokens", "token_lengths", "durations", "frame_lengths"))
        )

    def to(self, device) -> TTSCondition:
        return TTSCondition(
            self.tokens.to(device),
            self.token_lengths.to(device),
            self.durations.to(device),
            self.frame_lengths.to(device),
        )

    @property
    def wave_lengths(self) -> torch.Tensor:
        return self.frame_lengths


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], -1)


class TextEncoder(nn.Module):
    """Embedding, convolutions and a BiLSTM over characters (Tacotron 2's encoder, used by WaveGrad 2)."""

    def __init__(self, c: WaveGrad2Config):
        super().__init__()
        self.embed = nn.Embedding(len(CHARACTERS), c.encoder_dim, padding_idx=0)
        self.convs = nn.ModuleList(
            nn.Conv1d(c.encoder_dim, c.encoder_dim, c.encoder_kernel, padding=c.encoder_kernel // 2)
            for _ in range(c.encoder_layers)
        )
        self.norms = nn.ModuleList(nn.GroupNorm(1, c.encoder_dim) for _ in range(c.encoder_layers))
        self.dropout = nn.Dropout(c.dropout)
        self.lstm = nn.LSTM(c.encoder_dim, c.encoder_dim // 2, batch_first=True, bidirectional=True)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens).transpose(1, 2)
        mask = (torch.arange(tokens.shape[1], device=tokens.device)[None] < lengths[:, None]).to(h.dtype)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = self.dropout(F.relu(norm(conv(h * mask[:, None]))))
        packed = nn.utils.rnn.pack_padded_sequence(
            h.transpose(1, 2), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=tokens.shape[1])
        return out * mask[..., None]


class GaussianUpsampling(nn.Module):
    """Duration and range prediction, and Gaussian upsampling of characters to frames (Non-Attentive Tacotron,
    as in WaveGrad 2): frame f takes sum_i w_fi h_i with w_fi proportional to N(f + 0.5; c_i, sigma_i^2),
    c_i the centre of character i under the durations."""

    def __init__(self, c: WaveGrad2Config):
        super().__init__()
        self.duration = nn.Sequential(
            nn.Linear(c.encoder_dim, c.encoder_dim), nn.ReLU(), nn.Linear(c.encoder_dim, 1)
        )
        self.range = nn.Sequential(
            nn.Linear(c.encoder_dim + 1, c.encoder_dim), nn.ReLU(), nn.Linear(c.encoder_dim, 1)
        )

    def predict_durations(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Frames per character (B, N), 0 on padding; the network predicts log(1 + d)."""
        mask = torch.arange(h.shape[1], device=h.device)[None] < lengths[:, None]
        return torch.expm1(F.softplus(self.duration(h).float().squeeze(-1))) * mask

    def forward(self, h: torch.Tensor, durations: torch.Tensor, n_frames: int) -> torch.Tensor:
        durations = durations.float()
        mask = durations > 0
        ranges = self.range(torch.cat([h, durations[..., None].to(h.dtype)], -1)).float()
        sigma = F.softplus(ranges.squeeze(-1)) + 0.2
        centres = torch.cumsum(durations, 1) - durations / 2
        frames = torch.arange(n_frames, device=h.device, dtype=torch.float32)[None, :, None] + 0.5
        logits = -((frames - centres[:, None]) ** 2) / (2 * sigma[:, None] ** 2) - torch.log(sigma[:, None])
        logits = logits.masked_fill(~mask[:, None], -1e9)
        return (torch.softmax(logits, -1) @ h.float()).to(h.dtype)  # (B, F, D)


class FiLM(nn.Module):
    """Feature-wise scale and shift from the noisy waveform's features and the timestep (WaveGrad's FiLM)."""

    def __init__(self, in_channels: int, out_channels: int, time_dim: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, in_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, in_channels)
        self.out = nn.Conv1d(in_channels, 2 * out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.leaky_relu(self.conv(x) + self.time(temb)[..., None], 0.2)
        scale, shift = self.out(h).chunk(2, 1)
        return scale, shift


class UBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, factor: int):
        super().__init__()
        self.factor = factor
        self.skip = nn.Conv1d(c_in, c_out, 1)
        self.conv1 = nn.Conv1d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=2, dilation=2)

    def forward(self, h: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(h, scale_factor=self.factor, mode="nearest")
        out = self.conv1(F.leaky_relu(up, 0.2))
        out = self.conv2(F.leaky_relu(scale * out + shift, 0.2))
        return out + self.skip(up)


class DBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, factor: int):
        super().__init__()
        self.down = nn.Conv1d(c_in, c_out, factor, stride=factor)
        self.conv = nn.Conv1d(c_out, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(x)
        return h + self.conv(F.leaky_relu(h, 0.2))


class WaveGrad2(nn.Module):
    """Text in, waveform out by iterative denoising; `forward` predicts the noise eps(x_t, t, cond)."""

    def __init__(self, config: WaveGrad2Config):
        super().__init__()
        self.config = c = config
        self.encoder = TextEncoder(c)
        self.upsampling = GaussianUpsampling(c)
        self.time = nn.Sequential(nn.Linear(c.time_embedding_dim, c.time_embedding_dim), nn.SiLU())
        ch = c.decoder_channels
        self.frames_in = nn.Conv1d(c.encoder_dim, ch[0], 3, padding=1)
        self.ublocks = nn.ModuleList(
            UBlock(ch[max(i - 1, 0)] if i else ch[0], ch[i], f) for i, f in enumerate(c.upsample_factors)
        )
        down = [max(x // 2, 8) for x in ch]
        self.wave_in = nn.Conv1d(1, down[-1], 5, padding=2)
        # DBlocks bring the waveform's features to the resolutions of UBlocks n-2, ..., 0
        self.dblocks = nn.ModuleList(
            DBlock(down[i + 1], down[i], c.upsample_factors[i + 1]) for i in reversed(range(len(ch) - 1))
        )
        self.films = nn.ModuleList(FiLM(down[i], ch[i], c.time_embedding_dim) for i in range(len(ch)))
        self.out = nn.Conv1d(ch[-1], 1, 3, padding=1)

    # --- conditioning ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def prepare(self, texts: list[str], pace: float = 1.0) -> tuple[TTSCondition, tuple[int, ...]]:
        """Predict durations for `texts`: the conditioning and the waveform shape (B, 1, samples)."""
        device = next(self.parameters()).device
        tokens, lengths = batch_text(texts)
        tokens, lengths = tokens.to(device), lengths.to(device)
        h = self.encoder(tokens, lengths)
        durations = self.upsampling.predict_durations(h, lengths) * pace
        frames = durations.sum(1).round().clamp(min=1).long()
        cond = TTSCondition(tokens, lengths, durations, frames)
        return cond, (len(texts), 1, int(frames.max()) * self.config.hop_length)

    def condition_from_durations(self, texts: list[str], durations: list[torch.Tensor]) -> TTSCondition:
        device = next(self.parameters()).device
        tokens, lengths = batch_text(texts)
        d = torch.zeros(tokens.shape, dtype=torch.float32)
        for row, dur in enumerate(durations):
            d[row, : len(dur)] = dur
        frames = d.sum(1).round().clamp(min=1).long()
        return TTSCondition(tokens.to(device), lengths.to(device), d.to(device), frames.to(device))

    def frame_features(self, cond: TTSCondition, n_frames: int) -> torch.Tensor:
        h = self.encoder(cond.tokens, cond.token_lengths)
        return self.upsampling(h, cond.durations, n_frames).transpose(1, 2)  # (B, D, F)

    # --- denoiser -------------------------------------------------------------------------------------------
    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: TTSCondition) -> torch.Tensor:
        hop = self.config.hop_length
        if x_t.shape[-1] % hop:
            raise ValueError(f"waveform length {x_t.shape[-1]} is not a multiple of the hop length {hop}")
        n_frames = x_t.shape[-1] // hop
        if t.ndim == 0:
            t = t.expand(x_t.shape[0])
        dtype = self.out.weight.dtype
        temb = self.time(timestep_embedding(t, self.config.time_embedding_dim).to(dtype))
        feats = [self.wave_in(x_t.to(dtype))]
        for block in self.dblocks:
            feats.append(block(feats[-1]))
        feats = feats[::-1]  # coarsest first: resolution of UBlock 0, ..., finest
        h = self.frames_in(self.frame_features(cond, n_frames))
        for i, (block, film) in enumerate(zip(self.ublocks, self.films, strict=True)):
            scale, shift = film(feats[i], temb)
            h = block(h, scale, shift)
        return self.out(F.leaky_relu(h, 0.2)).float()

    # --- sampling -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def synthesise(
        self,
        texts: list[str],
        scheduler=None,
        num_inference_steps: int = 50,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms (B, samples) in [-1, 1] and their lengths, by the scheduler's ancestral sampling."""
        scheduler = scheduler or self.config.scheduler()
        scheduler.set_timesteps(num_inference_steps)
        cond, shape = self.prepare(texts)
        device = next(self.parameters()).device
        x = torch.randn(shape, generator=generator).to(device)
        for t in scheduler.timesteps:
            eps = self(x, torch.full((shape[0],), int(t), device=device), cond)
            x = scheduler.step(eps, t, x, generator=generator).prev_sample
        return x.squeeze(1).clamp(-1, 1), cond.frame_lengths * self.config.hop_length

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> WaveGrad2:
        from safetensors.torch import load_file

        path = Path(path)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(
                    f"{path / name}: missing; a WaveGrad2 checkpoint has {CONFIG_FILE} and {WEIGHTS_FILE}"
                )
        model = cls(WaveGrad2Config(**json.loads((path / CONFIG_FILE).read_text())))
        model.load_state_dict(load_file(str(path / WEIGHTS_FILE), device=str(device)))
        return model.to(device)
