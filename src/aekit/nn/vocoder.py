"""A small neural vocoder: log-mel frames to a waveform through an inverse STFT (Vocos).

The network never upsamples: a stack of ConvNeXt blocks runs at the frame rate and predicts,
for every frame, the log magnitude and the phase of each STFT bin; ``torch.istft`` turns them
into samples. That is what makes it cheap on a CPU (12-19 ms per second of speech on 2
cores) where upsampling vocoders (HiFi-GAN, WaveRNN) run at the sample rate. It is trained on
spectral losses of its own waveform (``multi_resolution_stft_loss``), so the phase it predicts
is one whose STFT is consistent, which is what Griffin-Lim only approaches by iterating.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checks import check_int
from ..errors import ParameterError

# (n_fft, hop) of the training loss. The two short ones (8 and 16 ms windows) matter: with only
# the three long ones a recognizer kept 0.642 of real speech's words through the vocoder, with
# all five (and twice the steps) 0.770, against Griffin-Lim's 0.750 (BENCHMARKS.md, issue 38)
STFT_RESOLUTIONS = ((128, 32), (256, 64), (512, 128), (1024, 256), (2048, 512))
MAX_LOG_MAGNITUDE = 7.0  # exp(7) ~ 1,100: no real frame's bin is louder; keeps early training finite


class ConvNeXtBlock(nn.Module):
    """Depthwise convolution along time, then a per-frame MLP, added back (ConvNeXt, 1-D)."""

    def __init__(self, dim: int, kernel: int = 7, mult: int = 3) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, dim * mult)
        self.down = nn.Linear(dim * mult, dim)
        self.scale = nn.Parameter(torch.full((dim,), 0.1))  # layer scale: blocks start near identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T]
        y = self.norm(self.depthwise(x).transpose(1, 2))
        y = self.down(F.gelu(self.up(y))) * self.scale
        return x + y.transpose(1, 2)


class ISTFTVocoder(nn.Module):
    """Normalised log-mel ``[B, n_mels, T]`` to a waveform ``[B, (T - 1) * hop_length]``
    (frames centred as librosa's ``center=True``, so ``T = 1 + n_samples // hop_length``).
    ``sample_rate``, ``fmin`` and ``fmax`` name the mel bands, for the training loss."""

    def __init__(self, n_mels: int, n_fft: int, hop_length: int, sample_rate: int, fmin: float = 0.0,
                 fmax: float | None = None, dim: int = 192, blocks: int = 6) -> None:
        super().__init__()
        self.config = dict(n_mels=check_int(n_mels, "n_mels", 1, 512), n_fft=check_int(n_fft, "n_fft", 16, 1 << 14),
                           hop_length=check_int(hop_length, "hop_length", 1, n_fft),
                           sample_rate=check_int(sample_rate, "sample_rate", 1000, 192_000),
                           fmin=float(fmin), fmax=None if fmax is None else float(fmax),
                           dim=check_int(dim, "dim", 8, 2048), blocks=check_int(blocks, "blocks", 1, 64))
        self.n_fft, self.hop_length = n_fft, hop_length
        self.embed = nn.Conv1d(n_mels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(dim) for _ in range(blocks)])
        self.final_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_fft + 2)  # log magnitude and phase of n_fft // 2 + 1 bins
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self._mel_basis: Tensor | None = None

    def spec(self) -> dict[str, Any]:
        return {"type": "istft_vocoder", **self.config}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ISTFTVocoder:
        if not isinstance(spec, dict) or spec.get("type") != "istft_vocoder":
            raise ParameterError("a vocoder spec must be a JSON object of type 'istft_vocoder'")
        return cls(**{k: v for k, v in spec.items() if k != "type"})

    def spectrum(self, mel: Tensor) -> Tensor:
        """The complex STFT ``[B, n_fft // 2 + 1, T]`` the network predicts."""
        h = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        h = self.final_norm(self.blocks(h).transpose(1, 2))
        log_magnitude, phase = self.head(h).transpose(1, 2).chunk(2, dim=1)
        return torch.polar(torch.exp(log_magnitude.clamp(max=MAX_LOG_MAGNITUDE)), phase)

    def forward(self, mel: Tensor, length: int | None = None) -> Tensor:
        length = (mel.shape[-1] - 1) * self.hop_length if length is None else length
        return torch.istft(self.spectrum(mel), self.n_fft, self.hop_length, window=self.window, center=True,
                           length=length)

    def loss(self, mel: Tensor, progress: float, wave: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Multi-resolution STFT loss plus the L1 distance of log-mel spectrograms, of the
        waveform made from ``mel`` against ``wave``, the recording it was computed from."""
        out = self(mel, length=wave.shape[-1])
        spectral = multi_resolution_stft_loss(out, wave)
        mel_error = F.l1_loss(self._log_mel(out), self._log_mel(wave))
        return spectral + mel_error, {"stft": spectral.detach(), "mel": mel_error.detach()}

    def _log_mel(self, wave: Tensor) -> Tensor:
        """The natural-log mel power spectrogram of ``wave``, as ``data.audio.log_mel`` makes it."""
        if self._mel_basis is None:
            import librosa

            c = self.config
            self._mel_basis = torch.from_numpy(librosa.filters.mel(
                sr=c["sample_rate"], n_fft=c["n_fft"], n_mels=c["n_mels"], fmin=c["fmin"], fmax=c["fmax"]))
        power = torch.stft(wave, self.n_fft, self.hop_length, window=self.window, center=True,
                           return_complex=True).abs().square()
        return torch.log((self._mel_basis.to(power) @ power).clamp(min=1e-5))


def _magnitude(wave: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, device=wave.device)
    spec = torch.stft(wave, n_fft, hop, window=window, center=True, return_complex=True)
    return spec.abs().clamp(min=1e-5)


def multi_resolution_stft_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spectral convergence plus log-magnitude L1, averaged over ``STFT_RESOLUTIONS``
    (Parallel WaveGAN's auxiliary loss): loud bins by the first, quiet ones by the second."""
    total = output.new_zeros(())
    for n_fft, hop in STFT_RESOLUTIONS:
        out, ref = _magnitude(output, n_fft, hop), _magnitude(target, n_fft, hop)
        convergence = torch.linalg.norm(ref - out) / torch.linalg.norm(ref).clamp(min=1e-5)
        total = total + convergence + F.l1_loss(out.log(), ref.log())
    return total / len(STFT_RESOLUTIONS)
