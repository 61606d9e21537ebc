"""Discrete bottlenecks: binary, one-hot (Gumbel-softmax) and vector-quantized codes."""
from __future__ import annotations

import math

import pytest
import torch

from aekit import AutoEncoder
from aekit.nn import BinaryBottleneck, OneHotBottleneck, VectorQuantizer, VQBottleneck, build, codebook_health, describe
from aekit.training import TrainConfig, train


def _grad_reaches_input(neck: torch.nn.Module, h: torch.Tensor) -> bool:
    h = h.clone().requires_grad_(True)
    out = neck(h)
    (out.code.pow(2).sum() + sum(v.sum() for v in out.aux_losses.values())).backward()
    return h.grad is not None and h.grad.abs().sum() > 0


def test_binary_codes_are_hard_with_straight_through_gradients():
    torch.manual_seed(0)
    neck = BinaryBottleneck(6, 5, noise=0.3, balance=0.1)
    h = torch.randn(32, 6)
    neck.train()
    assert _grad_reaches_input(neck, h)
    out = neck(h)
    # hard in the forward pass (up to the rounding of hard + soft - soft)
    assert out.code.shape == (32, 5) and torch.allclose(out.code, out.code.round(), atol=1e-6)
    assert "bit_balance" in out.aux_losses and neck.aux_weight("bit_balance", 0.5) == 0.1
    neck.eval()
    code = neck(h).code
    assert set(code.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(neck(h).indices.float(), code)


def test_one_hot_anneals_temperature_and_is_hard_at_inference():
    torch.manual_seed(0)
    neck = OneHotBottleneck(6, 7, style_size=3, tau_start=2.0, tau_end=0.5)
    h = torch.randn(64, 6)
    neck.train()
    neck.set_progress(0.0)
    assert neck.temperature == pytest.approx(2.0)
    neck.set_progress(1.0)
    assert neck.temperature == pytest.approx(0.5)
    assert _grad_reaches_input(neck, h)
    out = neck(h)
    assert out.code.shape == (64, 7)
    assert torch.allclose(out.code[:, :4].sum(1), torch.ones(64))  # straight-through: hard one-hot forward
    neck.eval()
    out = neck(h)
    assert set(out.code[:, :4].unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(out.code[:, :4].argmax(1), out.indices)
    # the balance loss is 0 for uniform class use and log K when every input picks one class
    assert out.aux_losses["balance"].shape == (64,)
    with torch.no_grad():
        neck.logits.weight.zero_()
        neck.logits.bias.zero_()
        assert neck(h).aux_losses["balance"][0].item() == pytest.approx(0.0, abs=1e-6)
        neck.logits.bias.copy_(torch.tensor([50.0, 0.0, 0.0, 0.0]))
        assert neck(h).aux_losses["balance"][0].item() == pytest.approx(math.log(4), abs=1e-4)


def test_vector_quantizer_kmeans_init_ema_and_dead_code_restart():
    torch.manual_seed(0)
    vq = VectorQuantizer(8, 2, kmeans_init=True, ema=True, dead_after=3)
    vq.train()
    z = torch.cat([torch.randn(50, 2) * 0.1 + c for c in (torch.tensor([3.0, 0]), torch.tensor([-3.0, 0]))])
    quantized, idx, loss = vq.quantize(z)
    assert bool(vq.initialized) and quantized.shape == z.shape and idx.shape == (100,) and loss.shape == (100,)
    # k-means init puts entries on both clusters: every vector is quantized closely
    assert (quantized - z).pow(2).sum(1).max() < 0.5
    before = vq.embed.clone()
    far = torch.randn(100, 2) * 0.1 + torch.tensor([0.0, 5.0])
    for _ in range(5):  # entries never used for 3 steps restart onto the current batch
        vq.quantize(far)
    assert int(vq.restarts) > 0 and not torch.equal(before, vq.embed)
    assert (vq.embed - torch.tensor([0.0, 5.0])).norm(dim=1).min() < 1.0
    vq.eval()
    frozen = vq.embed.clone()
    vq.quantize(z)
    torch.testing.assert_close(vq.embed, frozen)  # no updates at inference


def test_vector_quantizer_without_ema_learns_the_codebook_by_gradient():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 3, ema=False, kmeans_init=False)
    z = torch.randn(16, 3, requires_grad=True)
    quantized, _, loss = vq.quantize(z)
    (quantized.sum() + loss.sum()).backward()
    assert vq.embed.grad is not None and z.grad is not None


@pytest.mark.parametrize("combine", ["residual", "product"])
def test_vq_bottleneck_codebooks_shapes_and_spec_round_trip(combine):
    torch.manual_seed(0)
    neck = VQBottleneck(10, code_size=12, codebook_size=16, positions=3, codebooks=2, combine=combine)
    h = torch.randn(20, 10)
    neck.train()
    assert _grad_reaches_input(neck, h)
    out = neck(h)
    assert out.code.shape == (20, 12) and out.indices.shape == (20, 3, 2)
    assert neck.bits == pytest.approx(3 * 2 * 4)
    rebuilt = build(describe(neck))
    rebuilt.load_state_dict(neck.state_dict())
    neck.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(h).code, neck(h).code)


def test_residual_codebooks_reconstruct_better_than_one():
    torch.manual_seed(0)
    z = torch.randn(400, 4)
    errors = {}
    for books in (1, 3):
        neck = VQBottleneck(4, code_size=4, codebook_size=8, codebooks=books)
        neck.proj = torch.nn.Identity()
        neck.train()
        for _ in range(20):
            neck(z)
        neck.eval()
        errors[books] = (neck(z).code - z).pow(2).mean().item()
    assert errors[3] < 0.7 * errors[1]


def test_codebook_health_counts_use_and_perplexity():
    health = codebook_health(torch.tensor([0, 1, 2, 3] * 5), 8, restarts=2)
    assert health["codes_used"] == 4 and health["perplexity"] == pytest.approx(4.0)
    assert health["perplexity_ratio"] == pytest.approx(0.5) and health["dead_restarts"] == 2


@pytest.mark.parametrize("kind,options", [("binary", {"noise": 0.5}), ("onehot", {"style_size": 2}),
                                          ("vq", {"positions": 2})])
def test_discrete_autoencoders_train_and_round_trip(kind, options):
    torch.manual_seed(0)
    x = torch.rand(256, 1, 8, 8)
    model = AutoEncoder.conv((1, 8, 8), channels=(8, 16), hidden=32, code_size=8, bottleneck=kind, **options)
    result = train(model, x[:200], x[200:], TrainConfig(epochs=3, batch_size=64, verbose=0))
    assert len(result.history) == 3 and all(torch.isfinite(torch.tensor(r["val_loss"])) for r in result.history)
    rebuilt = AutoEncoder.from_spec(model.spec())
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    torch.testing.assert_close(rebuilt.reconstruct(x[:5]), model.reconstruct(x[:5]))
    assert model.encode_indices(x[:5]).shape[0] == 5


def test_bad_discrete_options_raise():
    with pytest.raises(ValueError, match="code_size"):
        OneHotBottleneck(4, 1)
    with pytest.raises(ValueError, match="needs >= 2 classes"):
        OneHotBottleneck(4, 3, style_size=2)
    with pytest.raises(ValueError, match="bits"):
        BinaryBottleneck(4, 0)
    with pytest.raises(ValueError, match="codebook_size"):
        VQBottleneck(4, codebook_size=1)
    with pytest.raises(ValueError, match="divisible"):
        VQBottleneck(4, code_size=5, codebook_size=8, codebooks=2, combine="product")
    with pytest.raises(ValueError, match="bottleneck must be"):
        AutoEncoder.mlp(4, bottleneck="ternary")


@pytest.mark.parametrize("kind,options", [("binary", {}), ("onehot", {"style_size": 2}), ("vq", {"positions": 2,
                                                                                                "codebook_size": 8})])
def test_decode_indices_inverts_the_symbols_and_rates_are_bits(kind, options):
    torch.manual_seed(0)
    model = AutoEncoder.mlp(6, [8], 6, bottleneck=kind, **options)
    x = torch.randn(40, 6)
    model.train()
    model.loss(x)  # a training step's forward (initialises a k-means codebook)
    model.eval()
    out = model.code_output(x)
    if kind == "onehot":  # the style part is continuous: decode_indices takes it back
        style = out.code[:, -2:]
        torch.testing.assert_close(model.bottleneck.decode_indices(out.indices, style), out.code)
    else:
        torch.testing.assert_close(model.bottleneck.decode_indices(out.indices), out.code)
    expected_bits = {"binary": 6.0, "onehot": math.log2(4), "vq": 2 * 3.0}[kind]
    torch.testing.assert_close(out.rate, torch.full((40,), expected_bits))
    assert model.decode_indices(out.indices[:3] if kind != "onehot" else out.indices[:3]).shape == (3, 6)


def test_continuous_codes_have_no_symbols_and_gaussian_rate_is_the_kl_in_bits():
    model = AutoEncoder.mlp(6, [8], 3, bottleneck="gaussian")
    model.eval()
    out = model.code_output(torch.randn(5, 6))
    torch.testing.assert_close(out.rate, out.aux_losses["kl"] / math.log(2))
    with pytest.raises(ValueError, match="no discrete symbols"):
        AutoEncoder.mlp(6, [8], 3).decode_indices(torch.zeros(2, 3))


def test_split_bottleneck_content_and_style_parts():
    torch.manual_seed(0)
    content = {"type": "vq", "code_size": 4, "codebook_size": 8, "positions": 2}
    style = {"type": "gaussian", "code_size": 3, "kl_warmup": 0.5}
    model = AutoEncoder.mlp(10, [16], 7, bottleneck="split", content=content, style=style)
    neck = model.bottleneck
    assert neck.code_size == 7 and neck.discrete
    x = torch.randn(32, 10)
    model.train()
    loss, parts = model.loss(x, 0.25)
    assert {"content.vq", "style.kl"} <= set(parts) and torch.isfinite(loss)
    assert neck.aux_weight("style.kl", 0.25) == pytest.approx(0.5)  # the style part keeps its own KL warm-up
    model.eval()
    out = model.code_output(x)
    c, s = neck.split_code(out.code)
    assert c.shape == (32, 4) and s.shape == (32, 3) and out.indices.shape == (32, 2, 1)
    # another sample's style with this sample's content: the code a voice conversion decodes
    swapped = neck.join(c, s.roll(1, 0))
    torch.testing.assert_close(neck.decode_indices(out.indices, s.roll(1, 0)), swapped)
    rebuilt = AutoEncoder.from_spec(model.spec())
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    torch.testing.assert_close(rebuilt.encode(x), model.encode(x))
    with pytest.raises(ValueError, match="content"):
        AutoEncoder.mlp(10, [16], 7, bottleneck="split", content={"type": "nope", "code_size": 2}, style=style)


def test_conditional_decoder_uses_its_condition_and_trains_on_tuples():
    torch.manual_seed(0)
    cond = torch.randint(0, 2, (512, 1)).float()
    x = torch.cat([3 * cond.expand(-1, 2), torch.randn(512, 2)], dim=1)
    model = AutoEncoder.mlp(4, [16], 2, condition_size=1)
    # the loop indexes (inputs, condition) together and passes the condition to the loss
    history = train(model, (x, cond), (x[:64], cond[:64]),
                    TrainConfig(epochs=30, batch_size=64, verbose=0, patience=100)).history
    assert history[-1]["val_loss"] < 0.3 * history[0]["val_loss"]
    z = model.encode(x[:64])
    assert not torch.allclose(model.decode(z, 1 - cond[:64]), model.decode(z, cond[:64]))
    rebuilt = AutoEncoder.from_spec(model.spec())
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    torch.testing.assert_close(rebuilt.reconstruct(x[:5], cond[:5]), model.reconstruct(x[:5], cond[:5]))
    with pytest.raises(ValueError, match="needs a condition"):
        model.decode(z)
    with pytest.raises(ValueError, match="takes no condition"):
        AutoEncoder.mlp(4, [16], 1).decode(z[:, :1], cond[:64])
