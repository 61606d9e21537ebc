"""The shared core: AutoEncoder, bottlenecks, the training loop, checkpoints and resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit import AutoEncoder
from aekit import training as training_mod
from aekit.nn import MLP, GaussianBottleneck
from aekit.nn.subnormal import flush_subnormal_
from aekit.training import TrainConfig, evaluate_loss, train


def low_rank_data(n: int = 600, d: int = 12, rank: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, rank, generator=g) @ torch.randn(rank, d, generator=g) + 0.05 * torch.randn(n, d, generator=g)


def test_shapes_and_spec_round_trip():
    model = AutoEncoder.mlp(10, hidden=[16, 8], code_size=3, dropout=0.1, batch_norm=True, activation="gelu")
    x = torch.randn(5, 10)
    out = model(x)
    assert out.reconstruction.shape == (5, 10) and out.code.shape == (5, 3)
    clone = AutoEncoder.from_spec(model.spec())
    clone.load_state_dict(model.state_dict())
    model.eval(), clone.eval()
    torch.testing.assert_close(model.reconstruct(x), clone.reconstruct(x))


def test_bad_architecture_options_raise():
    with pytest.raises(ValueError, match="activation"):
        MLP(3, 3, [4], activation="nope")
    with pytest.raises(ValueError, match="code_size"):
        AutoEncoder.mlp(4, code_size=0)
    with pytest.raises(ValueError, match="bottleneck"):
        AutoEncoder.mlp(4, bottleneck="hexagonal")


def test_training_beats_mean_baseline_and_stops_early():
    X = low_rank_data()
    Xtr, Xval = X[:500], X[500:]
    torch.manual_seed(0)
    model = AutoEncoder.mlp(12, [32, 16], 3)
    result = train(model, Xtr, Xval, TrainConfig(epochs=300, lr=3e-3, patience=5, verbose=0))
    baseline = (Xval - Xtr.mean(0)).pow(2).mean().item()  # predict the mean: the trivial AE
    assert evaluate_loss(model, Xval) < 0.2 * baseline
    assert result.stopped_early and len(result.history) < 300
    assert result.best_loss == min(r["val_loss"] for r in result.history)


def test_subnormal_weights_become_zero_and_no_output_moves():
    """Numbers below float32's smallest normal (weight decay's residue in dead units; slow on
    x86) are set to zero, bit for bit the same outputs; zeros and normal numbers stay."""
    model = AutoEncoder.mlp(12, [16, 8], 3, batch_norm=True).eval()
    tiny = torch.finfo(torch.float32).tiny
    weight = model.decoder.net[0].weight
    with torch.no_grad():
        weight[0, :3] = torch.tensor([tiny / 2, -tiny / 8, 1e-45])
        weight[1, :2] = torch.tensor([0.0, tiny])
    x = low_rank_data(50)
    before = model.reconstruct(x)
    assert flush_subnormal_(model) == 3 and flush_subnormal_(model) == 0
    assert (weight[0, :3] == 0).all() and weight[1, 0] == 0 and weight[1, 1] == tiny
    assert torch.equal(model.reconstruct(x), before)


def test_training_leaves_no_subnormal_weights():
    """A weight with no gradient keeps its value under Adam without weight decay: planted
    subnormal ones (the inputs of a column of zeros) are zero after training."""
    X = low_rank_data()
    X[:, 0] = 0
    torch.manual_seed(0)
    model = AutoEncoder.mlp(12, [16], 3)
    with torch.no_grad():
        model.encoder.net[0].weight[:, 0] = torch.finfo(torch.float32).tiny / 4
    train(model, X, None, TrainConfig(epochs=1, verbose=0))
    assert (model.encoder.net[0].weight[:, 0] == 0).all()


def test_same_seed_same_model():
    X = low_rank_data()

    def fit() -> dict[str, torch.Tensor]:
        torch.manual_seed(1)
        m = AutoEncoder.mlp(12, [16], 3, dropout=0.1)
        train(m, X, None, TrainConfig(epochs=5, seed=1, verbose=0))
        return m.state_dict()

    a, b = fit(), fit()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


@pytest.mark.parametrize("lr_decay", [1.0, 0.1])  # a decaying learning rate resumes where it was
def test_resume_after_interruption_equals_uninterrupted(tmp_path, monkeypatch, lr_decay):
    X = low_rank_data(300)
    cfg = dict(epochs=8, patience=100, seed=3, verbose=0, batch_size=32, lr_decay=lr_decay)

    torch.manual_seed(3)
    straight = AutoEncoder.mlp(12, [16], 3, dropout=0.2)
    train(straight, X, X[:50], TrainConfig(**cfg))

    real_save = training_mod._save_checkpoint

    def save_then_die(path, model, opt, best, result, next_epoch, *rest):
        real_save(path, model, opt, best, result, next_epoch, *rest)
        if next_epoch == 4:
            raise KeyboardInterrupt  # as if the process were killed after epoch 4

    monkeypatch.setattr(training_mod, "_save_checkpoint", save_then_die)
    torch.manual_seed(3)
    with pytest.raises(KeyboardInterrupt):
        train(AutoEncoder.mlp(12, [16], 3, dropout=0.2), X, X[:50], TrainConfig(**cfg, checkpoint_dir=str(tmp_path)))
    monkeypatch.setattr(training_mod, "_save_checkpoint", real_save)

    torch.manual_seed(99)  # a different init: everything must come from the checkpoint
    resumed = AutoEncoder.mlp(12, [16], 3, dropout=0.2)
    result = train(resumed, X, X[:50], TrainConfig(**cfg, checkpoint_dir=str(tmp_path), resume=True))
    assert [r["epoch"] for r in result.history] == list(range(8))
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)


def test_lr_decay_follows_a_half_cosine(monkeypatch):
    seen = []
    real_step = torch.optim.Adam.step

    def record(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", record)
    train(AutoEncoder.mlp(4, [4], 2), torch.randn(40, 4), None,
          TrainConfig(epochs=4, batch_size=10, lr=1e-2, lr_decay=0.1, verbose=0))
    assert seen[0] == pytest.approx(1e-2)  # 16 steps at progress 0, 1/16, ..., 15/16
    assert seen[8] == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))
    assert seen == sorted(seen, reverse=True) and seen[-1] > 1e-3


def test_corrupt_checkpoint_gives_clear_error(tmp_path):
    (tmp_path / training_mod.CHECKPOINT_FILE).write_bytes(b"garbage")
    from aekit.errors import ModelFileError

    with pytest.raises(ModelFileError, match="cannot resume"):
        train(AutoEncoder.mlp(4, [4], 2), torch.randn(20, 4), None,
              TrainConfig(epochs=2, verbose=0, checkpoint_dir=str(tmp_path), resume=True))


def test_gaussian_bottleneck_kl_warmup_and_no_nan_on_extreme_inputs():
    neck = GaussianBottleneck(8, 2, beta=2.0, kl_warmup=0.5)
    assert neck.aux_weight("kl", 0.0) == 0.0
    assert neck.aux_weight("kl", 0.25) == pytest.approx(1.0)
    assert neck.aux_weight("kl", 0.9) == pytest.approx(2.0)
    model = AutoEncoder.mlp(6, [8], 2, bottleneck="gaussian")
    x = torch.tensor(np.r_[np.full((4, 6), 1e6), np.zeros((4, 6))], dtype=torch.float32)
    loss, parts = model.loss(x)
    assert torch.isfinite(loss) and torch.isfinite(parts["kl"])
    model.eval()
    torch.testing.assert_close(model.encode(x), model.encode(x))  # the mean at inference


def test_training_diverging_raises_clear_error():
    model = AutoEncoder.mlp(3, [4], 2)
    X = torch.tensor([[float("nan"), 0.0, 0.0]] * 10)
    with pytest.raises(FloatingPointError, match="training loss"):
        train(model, X, None, TrainConfig(epochs=2, verbose=0))


def test_a_missing_bundled_model_says_to_pass_model(tmp_path):
    from aekit import AnomalyDetector
    from aekit.errors import ModelFileError

    with pytest.raises(ModelFileError, match="no bundled model at gone/: pass --model \\(see 'aekit x train'\\)"):
        AnomalyDetector.load_bundled(tmp_path / "gone", "aekit x train")
