"""The one training loop: Adam, mini-batches, validation, early stopping, progress,
checkpoints with resume, and data parallelism under ``torchrun`` (DDP).

Determinism: epoch ``e`` shuffles with a generator seeded by ``(seed, e)``, and a checkpoint
holds the model, the optimizer, the best weights so far and the global RNG state, so an
interrupted run resumed from its checkpoint ends with the same weights as an uninterrupted one.
On a GPU (``device``) a model's noise comes from CUDA's generator, which a checkpoint does not
hold: a resumed GPU run matches an uninterrupted one in distribution, not bit for bit.

Data parallelism: when launched by ``torchrun`` (``WORLD_SIZE > 1``) each process takes a
strided share of every global mini-batch and DDP averages the gradients, so the result
matches a single process up to floating-point rounding. Validation runs on every rank over
the same data, so all ranks take the same early-stopping decision without talking.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checks import MAX_EPOCHS, check_device, check_float, check_int
from .distributed import distributed_context, is_main_process
from .errors import DataError, ModelFileError, ParameterError, TrainingDivergedError
from .io import load_checkpoint, save_checkpoint
from .nn.subnormal import flush_subnormal_

CHECKPOINT_FILE = "checkpoint.safetensors"
BUCKET_POOL = 50


@dataclass
class TrainConfig:
    """Options of ``train``. ``patience`` epochs without a relative improvement of
    ``min_delta`` in validation loss stop training; the best weights are restored."""

    epochs: int = 100
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    min_delta: float = 1e-4
    grad_clip: float | None = 5.0
    # the learning rate falls from ``lr`` to ``lr * lr_decay`` along a half cosine over the
    # epochs (1.0: constant); a function of progress alone, so a resumed run follows it too
    lr_decay: float = 1.0
    seed: int = 0
    verbose: int = 1
    checkpoint_dir: str | None = None
    resume: bool = False
    desc: str = "training"
    # the estimator's own settings (JSON values): a checkpoint made with others is refused by name
    settings: dict[str, Any] = field(default_factory=dict)
    # the index in the data tuple of a tensor of sample lengths: each batch then takes samples
    # of similar length (sorted within pools of ``BUCKET_POOL`` shuffled batches, the batches
    # shuffled again), so a model that pads a batch to its longest sample wastes little
    bucket_by: int | None = None
    # called after each epoch's validation with (model in eval mode, epoch); the numbers it
    # returns join that epoch's history record (e.g. a codebook health report)
    epoch_callback: Callable[[nn.Module, int], dict[str, float]] | None = None
    # where the steps run ("cpu", "cuda", "cuda:1", ...): the model and the data move there for
    # training, and the model comes back to the CPU with its best weights at the end
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", 1, MAX_EPOCHS)
        check_int(self.batch_size, "batch_size", 1, 1 << 20)
        check_int(self.patience, "patience", 1)
        check_int(self.seed, "seed", 0, 2**32 - 1)
        check_float(self.lr, "lr", 0, 10, low_open=True)
        check_float(self.weight_decay, "weight_decay", 0)
        check_float(self.lr_decay, "lr_decay", 0, 1)
        check_device(self.device)

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be resumed (verbosity and paths may differ)."""
        return {k: getattr(self, k) for k in ("epochs", "batch_size", "lr", "weight_decay", "patience", "min_delta",
                                               "grad_clip", "lr_decay", "seed", "bucket_by")}


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_loss: float = math.inf
    stopped_early: bool = False


Data = Tensor | tuple[Tensor, ...]


def steps_to_epochs(n_rows: int, batch_size: int, steps: int, low: int, high: int) -> int:
    """The epochs that make about ``steps`` optimizer steps over ``n_rows`` rows, within
    [``low``, ``high``] (an estimator's ``epochs="auto"``)."""
    steps_per_epoch = math.ceil(n_rows / batch_size)
    return min(high, max(low, math.ceil(steps / steps_per_epoch)))


def patience_in_updates(n_rows: int, batch_size: int, updates: int, low: int) -> int:
    """Epochs of patience worth about ``updates`` optimizer steps, at least ``low``: a set of
    a few hundred images is one step an epoch, and a patience of 5 epochs stopped its
    training after a handful of steps, untrained."""
    return max(low, math.ceil(updates / max(1, n_rows // batch_size)))  # full batches: a remainder of 7 rows is not one


def _as_tuple(data: Data) -> tuple[Tensor, ...]:
    return data if isinstance(data, tuple) else (data,)


class _Objective(nn.Module):
    """Wraps ``model.loss`` as a forward pass, which is what DDP synchronises."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: tuple[Tensor, ...], progress: float) -> tuple[Tensor, dict[str, Tensor]]:
        return self.model.loss(batch[0], progress, *batch[1:])


@torch.no_grad()
def evaluate_loss(model: nn.Module, data: Data, batch_size: int = 4096) -> float:
    """Mean training objective over ``data`` in eval mode (full weight on every aux loss)."""
    data = _as_tuple(data)
    was_training = model.training
    model.eval()
    total, n = 0.0, len(data[0])
    device = next(model.parameters()).device
    for start in range(0, n, batch_size):
        chunk = tuple(t[start:start + batch_size].to(device) for t in data)
        total += model.loss(chunk[0], 1.0, *chunk[1:])[0].item() * len(chunk[0])
    model.train(was_training)
    return total / max(n, 1)


def data_fingerprint(*tensors: Tensor | None) -> str:
    """SHA-256 of the training (and validation) tensors: a checkpoint of other data is refused."""
    h = hashlib.sha256()
    for t in tensors:
        for part in (_as_tuple(t) if t is not None else ()):
            part = part.detach().contiguous()
            h.update(f"{part.dtype}{tuple(part.shape)}".encode())
            h.update(part.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def train(model: nn.Module, train_data: Data, val_data: Data | None = None, config: TrainConfig | None = None) -> TrainResult:
    """Fit ``model`` in place: anything with ``loss(x, progress, *extra) -> (scalar, parts)``.
    ``train_data`` is a tensor, or a tuple of tensors indexed together (inputs and, e.g., a
    condition per sample) whose first is ``x``."""
    cfg = config or TrainConfig()
    train_data = _as_tuple(train_data)
    if len(train_data[0]) == 0:
        raise DataError("no training rows")
    rank, world = distributed_context()
    device = torch.device(cfg.device)
    if world > 1 and device.type != "cpu":
        raise ParameterError("device: data-parallel training (torchrun) runs on the CPU; train on one GPU instead")
    model.to(device)
    objective: nn.Module = _Objective(model)
    if world > 1:
        objective = nn.parallel.DistributedDataParallel(objective)
    optimizer = _adam(model, cfg)
    result = TrainResult()
    best_state = _clone_state(model)
    bad_epochs, start_epoch = 0, 0
    ckpt = Path(cfg.checkpoint_dir) / CHECKPOINT_FILE if cfg.checkpoint_dir else None
    fingerprint = None
    if ckpt is not None:
        fingerprint = {"data": data_fingerprint(train_data, val_data), "training": cfg.fingerprint(),
                       "settings": cfg.settings,
                       "parameters": {k: list(v.shape) for k, v in model.state_dict().items()}}
    if cfg.resume and ckpt is not None and ckpt.exists():
        start_epoch, bad_epochs, best_state = _load_checkpoint(ckpt, model, optimizer, result, fingerprint)
        best_state = {k: v.to(device) for k, v in best_state.items()}
    n = len(train_data[0])
    lengths = train_data[cfg.bucket_by] if cfg.bucket_by is not None else None  # batches are drawn on the CPU
    train_data = tuple(t.to(device) for t in train_data)  # after the fingerprint: it reads them on the CPU

    bar = tqdm(range(start_epoch, cfg.epochs), desc=cfg.desc, # None: bars only on a terminal, never in logs
               disable=True if cfg.verbose <= 0 or rank != 0 else None,
               initial=start_epoch, total=cfg.epochs, leave=False)
    for epoch in bar:
        if result.stopped_early:
            break
        model.train()
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        batches = _batches(torch.randperm(n, generator=gen), cfg.batch_size, lengths, gen)
        seen, start, running = 0, 0, torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64,
                                                 device=device)
        for idx in batches:
            progress = (epoch + start / n) / cfg.epochs
            start += len(idx)
            if len(idx) < world:  # a share would be empty: DDP needs every rank to step
                continue
            share = idx[rank::world].to(device)
            if cfg.lr_decay != 1.0:
                for group in optimizer.param_groups:
                    group["lr"] = cfg.lr * (cfg.lr_decay + (1 - cfg.lr_decay) * (1 + math.cos(math.pi * progress)) / 2)
            loss, _ = objective(tuple(t[share] for t in train_data), progress)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages the ranks' gradients; weighting each rank's mean by its share of
            # the batch makes that average the gradient of the global batch mean exactly,
            # also when the last batch does not split evenly.
            (loss * (len(share) * world / len(idx)) if world > 1 else loss).backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True)
            optimizer.step()
            running += loss.detach() * len(idx)  # no .item() per step: it costs more than the step
            seen += len(idx)
        flush_subnormal_(model)  # weight decay's residue, slow to compute with (nn.subnormal)
        record = {"epoch": epoch, "train_loss": running.item() / max(seen, 1)}
        if not math.isfinite(record["train_loss"]):
            raise TrainingDivergedError(f"training loss became {record['train_loss']} at epoch {epoch}: "
                                     "lower lr or check the data scale")
        monitored = record["train_loss"]
        if val_data is not None and len(_as_tuple(val_data)[0]):
            record["val_loss"] = monitored = evaluate_loss(model, val_data)
        if cfg.epoch_callback is not None:
            model.eval()
            record.update(cfg.epoch_callback(model, epoch))
        result.history.append(record)
        if monitored < result.best_loss - cfg.min_delta * abs(result.best_loss if math.isfinite(result.best_loss) else 0):
            result.best_loss, result.best_epoch, bad_epochs = monitored, epoch, 0
            best_state = _clone_state(model)
        else:
            bad_epochs += 1
            result.stopped_early = bad_epochs >= cfg.patience
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "epoch"})
        if ckpt is not None and is_main_process():
            _save_checkpoint(ckpt, model, optimizer, best_state, result, epoch + 1, bad_epochs, fingerprint)
    bar.close()
    model.load_state_dict(best_state)
    flush_subnormal_(model)  # a best state resumed from an older checkpoint may hold some
    model.to("cpu")
    model.eval()
    return result


def _batches(perm: Tensor, size: int, lengths: Tensor | None, gen: torch.Generator) -> list[Tensor]:
    """The epoch's mini-batches of shuffled indices ``perm``; with ``lengths``, each batch holds
    neighbours in length order within a pool of ``BUCKET_POOL`` batches, in shuffled order."""
    if lengths is None:
        return list(perm.split(size))
    batches: list[Tensor] = []
    for pool in perm.split(size * BUCKET_POOL):
        batches += pool[torch.argsort(lengths[pool], stable=True)].split(size)
    return [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]


def _adam(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    try:  # the fused kernel is several times cheaper per step for small networks
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError):  # older torch without a fused CPU Adam
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def _clone_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, best: dict[str, Tensor],
                     result: TrainResult, next_epoch: int, bad_epochs: int, fingerprint: dict[str, Any] | None) -> None:
    tensors: dict[str, Tensor] = {f"model.{k}": v.cpu() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.cpu() for k, v in best.items()})
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for key, value in state.items():
            tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value).cpu()
    tensors["rng"] = torch.get_rng_state()
    meta = {
        "next_epoch": next_epoch, "bad_epochs": bad_epochs, "best_epoch": result.best_epoch,
        "best_loss": result.best_loss if math.isfinite(result.best_loss) else None,
        "stopped_early": result.stopped_early, "history": result.history, "param_groups": opt["param_groups"],
        "fingerprint": fingerprint,
    }
    save_checkpoint(path, tensors, meta)


def _changed(before: Any, now: Any) -> str:
    """`` (name: old -> new, ...)`` for settings dicts; empty for anything else."""
    if not isinstance(before, dict) or not isinstance(now, dict):
        return ""
    keys = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    return " (" + ", ".join(f"{k}: {before.get(k)!r} -> {now.get(k)!r}" for k in keys[:4]) + ")" if keys else ""


def _load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, result: TrainResult,
                     fingerprint: dict[str, Any] | None) -> tuple[int, int, dict[str, Tensor]]:
    tensors, meta = load_checkpoint(path)
    saved = meta.get("fingerprint") or {}
    if fingerprint is not None:
        # a checkpoint of an earlier aekit records no settings: it is judged on the other parts
        saved.setdefault("settings", fingerprint["settings"])
        # settings first: they change the network and the data tensors too, and name the cause
        for part, what in (("settings", "other settings"), ("training", "other training settings"),
                           ("parameters", "another network"), ("data", "other data")):
            if saved.get(part) != fingerprint[part]:
                raise ModelFileError(f"cannot resume: the checkpoint in {path.parent} was made with {what}"
                                     f"{_changed(saved.get(part), fingerprint[part])}; drop --resume to start over")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng"])
    result.history = meta["history"]
    result.best_epoch = meta["best_epoch"]
    result.best_loss = math.inf if meta["best_loss"] is None else meta["best_loss"]
    result.stopped_early = meta["stopped_early"]
    return meta["next_epoch"], meta["bad_epochs"], best
