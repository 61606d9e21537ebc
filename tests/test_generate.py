"""The VAE decoder as a generator: the mixture prior, the likelihoods, the estimator, the CLI."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, norm
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split

from aekit import AutoEncoder
from aekit.apps.generate import (TokenGenerator, VAEGenerator, class_histogram_entropy, copy_ratio,
                                 frechet_distance, pca_frechet_distance)
from aekit.apps.generate.latent_prior import FittedLatentPrior
from aekit.cli import main
from aekit.data.images import load_images
from aekit.errors import DataError, ModelFileError, NotFittedError, OutputError
from aekit.nn import GaussianBottleneck
from aekit.nn.tokens import TokenAutoEncoder, TokenModel, TokenPrior

from .conftest import rewrite_config

TINY = dict(channels=(16, 32), hidden=128, epochs=150, refine_epochs=80, random_state=0)
TINY_TOKENS = dict(channels=(16,), codebook_size=16, dim=4, prior_width=32, prior_layers=1, epochs=30,
                   prior_epochs=30, batch_size=32)


@pytest.fixture(scope="module")
def digits_split():
    d = load_images("digits")
    tr, te = train_test_split(np.arange(len(d.labels)), test_size=0.5, stratify=d.labels, random_state=0)
    return d.images[tr], d.images[te], d.labels[tr]


@pytest.fixture(scope="module")
def tiny_vae(digits_split):
    return VAEGenerator(**TINY).fit(digits_split[0])


@pytest.fixture(scope="module")
def tiny_tokens(digits_split):
    return TokenGenerator(**TINY_TOKENS).fit(digits_split[0])


def test_mixture_prior_with_one_standard_component_is_the_standard_prior():
    torch.manual_seed(0)
    neck = GaussianBottleneck(6, 3, prior_components=1)
    with torch.no_grad():
        neck.prior_means.zero_()
    z = torch.randn(50, 3)
    standard = GaussianBottleneck(6, 3)
    torch.testing.assert_close(neck.log_prior(z), standard.log_prior(z))
    torch.testing.assert_close(standard.log_prior(z), torch.from_numpy(norm.logpdf(z.numpy()).sum(1)).float())
    # the one-sample KL estimate averages to the closed form when the prior is N(0, I)
    h = torch.randn(4, 6)
    neck.mu.load_state_dict(standard.mu.state_dict())
    neck.logvar.load_state_dict(standard.logvar.state_dict())
    neck.train()
    mc = torch.stack([neck(h).aux_losses["kl"] for _ in range(4000)]).mean(0)
    torch.testing.assert_close(mc, standard(h).aux_losses["kl"], atol=0.08, rtol=0.05)
    assert neck.sample_prior(7, torch.Generator().manual_seed(0)).shape == (7, 3)


def test_gaussian_sigma_likelihood_is_an_exact_density():
    model = AutoEncoder.mlp(5, hidden=(8,), code_size=2, bottleneck="gaussian", reconstruction="gaussian_sigma")
    model.eval()
    model.log_sigma.fill_(math.log(0.3))
    x, mean = torch.rand(4, 5), torch.rand(4, 5)
    expected = norm.logpdf(x.numpy(), mean.numpy(), 0.3).sum(1)
    np.testing.assert_allclose(model.log_likelihood(x, mean).numpy(), expected, rtol=1e-5)
    model.train()  # while training, sigma is the batch's root mean squared error
    loss, parts = model.loss(x)
    assert torch.isfinite(loss) and model.log_sigma.item() != math.log(0.3)
    with pytest.raises(ValueError, match="no likelihood"):
        AutoEncoder.mlp(5, hidden=(8,), code_size=2).log_likelihood(x, mean)


def test_small_vae_beats_the_gaussian_baseline_frechet_distance(digits_split, tiny_vae):
    train, test, labels = digits_split
    flat = lambda a: a.reshape(len(a), -1) * 16  # noqa: E731
    cov = np.cov(flat(train), rowvar=False)
    # the distance of 1,000 samples varies by about 6 from one seed to the next (38.7 and 32.1
    # on one machine): the mean of three seeds of 3,000 each is compared, a steadier number
    fd_gaussian = np.mean([pca_frechet_distance(flat(train), flat(test), np.clip(
        np.random.default_rng(seed).multivariate_normal(flat(train).mean(0), cov, 3000), 0, 16)) for seed in range(3)])
    fd_vae = np.mean([pca_frechet_distance(flat(train), flat(test), flat(tiny_vae.sample(3000, seed=seed)))
                      for seed in range(3)])
    assert fd_vae < 0.8 * fd_gaussian, (fd_vae, fd_gaussian)
    samples = tiny_vae.sample(1000, seed=0)
    entropy, hist = class_histogram_entropy(flat(train), labels, flat(samples))
    assert entropy > 2.0 and hist.sum() == 1000  # every digit is generated, none dominates
    # the samples are new images, not copies of training images
    assert copy_ratio(train, test, train[:300]) == 0 and copy_ratio(train, test, test) == 1
    assert copy_ratio(train, test, samples) > 0.7


def test_sample_encode_decode_interpolate(digits_split, tiny_vae):
    _, test, _ = digits_split
    a = tiny_vae.sample(5, seed=3)
    assert a.shape == (5, 1, 8, 8) and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, tiny_vae.sample(5, seed=3))
    assert not np.array_equal(a, tiny_vae.sample(5, seed=4))
    codes = tiny_vae.encode(test[:6])
    assert codes.shape == (6, tiny_vae.code_size)
    recon = tiny_vae.decode(codes)
    baseline = ((test[:6] - test.mean(0)) ** 2).mean()
    assert ((recon - test[:6]) ** 2).mean() < 0.5 * baseline
    strip = tiny_vae.interpolate(test[0, 0], test[1], steps=7)  # [H, W] and [C, H, W] ends
    assert strip.shape == (7, 1, 8, 8)
    np.testing.assert_allclose(strip[[0, -1]], recon[:2], atol=1e-5)


def test_samples_as_a_folder_of_pngs_replace_their_earlier_folder_whole(tmp_path, tiny_vae):
    """One PNG per sample, as FID tools read a folder; a second run leaves none of the first's."""
    from PIL import Image

    from aekit.apps.generate.jobs import sample_grid

    images = sample_grid(tiny_vae, 6, tmp_path / "grid.png", seed=1, png_dir=tmp_path / "pngs")
    files = sorted((tmp_path / "pngs").glob("*.png"))
    assert [f.name for f in files] == [f"sample_{i:05d}.png" for i in range(6)]
    np.testing.assert_array_equal(np.asarray(Image.open(files[2])), np.round(images[2, 0] * 255).astype(np.uint8))
    sample_grid(tiny_vae, 3, tmp_path / "grid.png", seed=2, png_dir=tmp_path / "pngs")
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.png").write_bytes(b"mine")
    with pytest.raises(OutputError, match="a folder that aekit did not make"):
        sample_grid(tiny_vae, 3, tmp_path / "grid.png", png_dir=tmp_path / "mine")
    with pytest.raises(OutputError, match="is inside --png-dir"):
        sample_grid(tiny_vae, 3, tmp_path / "pngs" / "grid.png", png_dir=tmp_path / "pngs")
    assert (tmp_path / "mine" / "photo.png").read_bytes() == b"mine"


def test_the_refiner_redraws_decoded_images_from_codebook_patches(tmp_path, digits_split, tiny_vae):
    train, test, _ = digits_split
    refiner = tiny_vae.refiner_
    assert refiner is not None and refiner.grid == (4, 4)  # tokens of 2x2 pixels on 8x8 digits
    with torch.no_grad():
        rebuilt = refiner.reconstruct(torch.from_numpy(test)).numpy()
    assert ((rebuilt - test) ** 2).mean() < 0.2 * ((test - train.mean(0)) ** 2).mean()
    codes = tiny_vae.encode(test[:20])
    refined = tiny_vae.decode(codes)
    plain = tiny_vae.set_params(refine_steps=0).decode(codes)
    tiny_vae.set_params(refine_steps=3)
    with torch.no_grad():  # three passes of the refiner over the decoder's mean
        x = torch.from_numpy(plain)
        for _ in range(3):
            x = refiner.reconstruct(x)
    np.testing.assert_allclose(refined, x.numpy(), atol=1e-5)
    assert not np.allclose(refined, plain, atol=1e-2)
    path = tiny_vae.save(tmp_path / "vae")
    rewrite_config(path, lambda c: c["networks"].pop("refiner"))
    with pytest.raises(ModelFileError, match="no refiner"):
        VAEGenerator.load(path)


def test_the_refiner_learns_its_patches_on_a_small_set_of_faces():
    """130 faces are one refiner update an epoch: its patience of 5 epochs stopped it after a
    few updates, and its patches smeared every face it redrew (held-out error 0.0455, now
    0.0024; the mean face 0.115)."""
    faces = load_images("lfw_subset").images
    gen = VAEGenerator(epochs=1, fitted_components=1, random_state=0).fit(faces[:130])
    with torch.no_grad():
        rebuilt = gen.refiner_.reconstruct(torch.from_numpy(faces[150:])).numpy()
    assert ((rebuilt - faces[150:]) ** 2).mean() < 0.005


def test_the_token_generator_trains_as_many_steps_on_a_small_set(digits_split):
    """Five epochs were MNIST's 2,000 steps and 150 images' five: its VQ-VAE redrew held-out
    digits worse than their mean image (0.172 against 0.079); "auto" gives about 2,000 steps."""
    train, test, _ = digits_split
    gen = TokenGenerator(channels=(16,), codebook_size=16, dim=4, prior_width=32, prior_layers=1).fit(train[:150])
    assert 5 < len(gen.training_history_["autoencoder"]) <= 300
    with torch.no_grad():
        rebuilt = gen.model_.autoencoder.reconstruct(torch.from_numpy(test)).numpy()
    assert ((rebuilt - test) ** 2).mean() < 0.6 * ((test - train.mean(0)) ** 2).mean()


def test_likelihood_bounds_are_ordered(digits_split, tiny_vae):
    _, test, _ = digits_split
    elbo = tiny_vae.elbo(test[:100], n_samples=20)
    iwae = tiny_vae.log_likelihood_bound(test[:100], k=20)
    assert np.isfinite(elbo).all() and elbo.shape == (100,)
    assert iwae.mean() > elbo.mean()  # the importance-weighted bound is the tighter one
    np.testing.assert_allclose(tiny_vae.log_likelihood_bound(test[:5], k=20),
                               tiny_vae.log_likelihood_bound(test[:5], k=20))


def test_save_load_round_trip_and_bad_inputs(tmp_path, digits_split, tiny_vae):
    _, test, _ = digits_split
    tiny_vae.save(tmp_path / "vae")
    loaded = VAEGenerator.load(tmp_path / "vae")
    np.testing.assert_allclose(loaded.sample(4, seed=1), tiny_vae.sample(4, seed=1), atol=1e-6)
    np.testing.assert_allclose(loaded.elbo(test[:10]), tiny_vae.elbo(test[:10]), rtol=1e-5)
    with pytest.raises(DataError, match=r"shape \[N, 16\]"):
        tiny_vae.decode(np.zeros((2, 5)))
    with pytest.raises(DataError, match="one image"):
        tiny_vae.interpolate(test[:2], test[3])
    with pytest.raises(DataError, match=r"float images must lie in \[0, 1\]"):
        tiny_vae.encode(test * 16)
    with pytest.raises(NotFittedError):
        VAEGenerator().sample(3)
    with pytest.raises(ValueError, match="likelihood"):
        VAEGenerator(likelihood="poisson").fit(test[:50])
    with pytest.raises(ValueError, match="architecture"):
        VAEGenerator(architecture="transformer").fit(test[:50])
    with pytest.raises(ValueError, match="prior must be"):
        VAEGenerator(prior="flow").fit(test[:50])
    with pytest.raises(ValueError, match="fitted_components"):
        VAEGenerator(fitted_components=0).fit(test[:50])
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(np.zeros((5, 2)), np.zeros((5, 3)))


def test_fitted_prior_chooses_its_size_on_held_out_codes_and_is_an_exact_density():
    rng = np.random.default_rng(0)
    centres = np.array([[-4.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 1.0]])
    draw = lambda n: centres[rng.integers(3, size=n)] + rng.normal(0, 0.5, (n, 3))  # noqa: E731
    train, held_out = draw(600), draw(200)
    prior, scores = FittedLatentPrior.fit(train, held_out, components=(1, 3, 10), smoothing=(0.01, 0.1))
    assert len(scores) == 6 and prior.n_components == 3 == max(scores, key=scores.get)[0]
    # its EM reaches scikit-learn's fit: the same held-out likelihood
    gm = GaussianMixture(3, covariance_type="full", reg_covar=0.01 * train.var(0).mean(), random_state=0).fit(train)
    assert abs(scores[(3, 0.01)] - gm.score(held_out)) < 0.01
    # log_prob is the exact mixture density
    z = torch.from_numpy(draw(50)).float()
    covs = prior.cholesky @ prior.cholesky.transpose(1, 2)
    exact = np.log(sum(w * multivariate_normal(m, c).pdf(z.numpy())
                       for w, m, c in zip(prior.weights.numpy(), prior.means.numpy(), covs.numpy())))
    np.testing.assert_allclose(prior.log_prob(z).numpy(), exact, rtol=1e-4, atol=1e-4)
    a = prior.sample(400, torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(a, prior.sample(400, torch.Generator().manual_seed(1)))
    nearest = np.linalg.norm(a.numpy()[:, None] - centres, axis=2).argmin(1)
    assert np.bincount(nearest, minlength=3).min() > 100  # every cluster is drawn, about a third each
    again = FittedLatentPrior.from_tensors(prior.tensors("p."), "p.")
    torch.testing.assert_close(again.log_prob(z), prior.log_prob(z))
    with pytest.raises(ValueError, match="too few for a mixture of 50"):
        FittedLatentPrior.fit(train, held_out, components=(50,))


def test_vae_fits_its_prior_to_the_training_codes(tiny_vae):
    chosen = max(tiny_vae.prior_selection_, key=tiny_vae.prior_selection_.get)
    assert tiny_vae.fitted_prior_ is not None and tiny_vae.fitted_prior_.n_components == chosen[0]


def test_mlp_architecture_bernoulli_likelihood_and_learned_prior_train(tmp_path, digits_split):
    train, test, _ = digits_split
    gen = VAEGenerator(architecture="mlp", likelihood="bernoulli", hidden=64, epochs=5, prior_components=0,
                       prior="learned", refine_steps=0).fit(train)
    assert gen.fitted_prior_ is None and gen.refiner_ is None and gen.sample(3).shape == (3, 1, 8, 8)
    np.testing.assert_array_equal(VAEGenerator.load(gen.save(tmp_path / "m")).sample(3), gen.sample(3))
    # a config that asks for a prior the weights do not hold
    rewrite_config(tmp_path / "m", lambda c: c["params"].update(prior="fitted"))
    with pytest.raises(ModelFileError, match="no fitted prior"):
        VAEGenerator.load(tmp_path / "m")
    assert (gen.elbo(test[:20]) < 0).all()  # Bernoulli log-likelihoods of [0, 1] data are negative


def test_cli_train_sample_interpolate(tmp_path, capsys):
    model = tmp_path / "vae"
    # the refiner's 2,000 updates are tested with tiny_vae; here the CLI's plumbing, without them
    assert main(["generate", "train", "digits", "--out", str(model), "--epochs", "3", "--refine-steps", "0",
                 "--quiet"]) == 0
    assert "Gaussians fit to the training codes" in capsys.readouterr().out
    assert main(["generate", "sample", "--model", str(model), "-n", "9", "--out", str(tmp_path / "grid.png"),
                 "--npz", str(tmp_path / "s.npz")]) == 0
    assert np.load(tmp_path / "s.npz")["images"].shape == (9, 1, 8, 8)
    assert main(["generate", "interpolate", "digits:0", "digits:1", "--model", str(model),
                 "--out", str(tmp_path / "strip.png"), "--steps", "5"]) == 0
    for png in ("grid.png", "strip.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["generate", "interpolate", "digits:0", "nowhere", "--model", str(model),
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "SOURCE:INDEX" in capsys.readouterr().err
    assert main(["generate", "sample", "--model", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    with pytest.raises(ModelFileError):
        VAEGenerator.load(tmp_path)


def test_token_prior_cached_sampling_matches_the_full_forward_pass():
    torch.manual_seed(0)
    prior = TokenPrior(vocab_size=7, length=9, width=16, layers=2, heads=4).eval()
    seq = prior.sample(5, torch.Generator().manual_seed(0))
    assert seq.shape == (5, 9) and 0 <= int(seq.min()) and int(seq.max()) < 7
    np.testing.assert_array_equal(seq, prior.sample(5, torch.Generator().manual_seed(0)))
    # the key/value cache gives the same conditionals as the causal pass over the whole sequence:
    # at temperature ~0 sampling is greedy, so each token is the full pass's argmax after its prefix
    greedy = prior.sample(5, torch.Generator().manual_seed(1), temperature=1e-4)
    with torch.no_grad():
        np.testing.assert_array_equal(prior.logits(greedy).argmax(-1), greedy)
        assert torch.isfinite(prior.log_prob(seq)).all() and (prior.log_prob(seq) < 0).all()
    with pytest.raises(ValueError, match="multiple of its heads"):
        TokenPrior(7, 9, width=18, heads=4)
    with pytest.raises(ValueError, match="must match"):
        TokenModel(TokenAutoEncoder(1, 8, 8, codebook_size=16, channels=(8,)), TokenPrior(15, 16))


def test_token_generator_learns_its_tokens_and_their_prior(digits_split, tiny_tokens):
    train, test, labels = digits_split
    gen = tiny_tokens
    tokens = gen.encode(test)
    assert tokens.shape == (len(test), 4, 4) and tokens.dtype == np.int64
    recon = gen.reconstruct(test)
    np.testing.assert_allclose(gen.decode(tokens), recon, atol=1e-6)
    assert ((recon - test) ** 2).mean() < 0.3 * ((test - train.mean(0)) ** 2).mean()
    # the prior beats the trivial model of the tokens (each drawn from the training histogram)
    counts = np.bincount(gen.encode(train).ravel(), minlength=16) + 1.0
    unigram = -np.log(counts / counts.sum())[tokens].sum((1, 2)).mean()
    with torch.no_grad():
        nll = -gen.model_.prior.log_prob(torch.from_numpy(tokens).flatten(1)).mean().item()
    assert nll < 0.85 * unigram, (nll, unigram)
    samples = gen.sample(500, seed=0)
    assert samples.shape == (500, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(gen.sample(5, seed=3), gen.sample(5, seed=3))
    flat = lambda a: a.reshape(len(a), -1) * 16  # noqa: E731
    assert class_histogram_entropy(flat(train), labels, flat(samples))[0] > 2.0  # every digit is drawn
    assert copy_ratio(train, test, samples) > 0.7  # new images, not copies
    strip = gen.interpolate(test[0, 0], test[1], steps=5)
    assert strip.shape == (5, 1, 8, 8)
    np.testing.assert_allclose(strip[[0, -1]], recon[:2], atol=1e-5)


def test_token_generator_save_load_and_bad_inputs(tmp_path, digits_split, tiny_tokens):
    _, test, _ = digits_split
    loaded = TokenGenerator.load(tiny_tokens.save(tmp_path / "tokens"))
    np.testing.assert_array_equal(loaded.sample(6, seed=2), tiny_tokens.sample(6, seed=2))
    with pytest.raises(DataError, match=r"integers in 0..15 of shape \[N, 4, 4\]"):
        tiny_tokens.decode(np.zeros((2, 3, 3), dtype=int))
    with pytest.raises(DataError, match="integers in 0..15"):
        tiny_tokens.decode(np.full((2, 4, 4), 16))
    with pytest.raises(DataError, match="integers"):
        tiny_tokens.decode(np.zeros((2, 4, 4)))
    with pytest.raises(DataError, match="one image"):
        tiny_tokens.interpolate(test[:2], test[3])
    with pytest.raises(NotFittedError):
        TokenGenerator().sample(3)
    with pytest.raises(ValueError, match="reconstruction"):
        TokenGenerator(reconstruction="l1").fit(test[:50])
    with pytest.raises(ModelFileError):
        VAEGenerator.load(tmp_path / "tokens")  # a token generator is not a VAE
    rewrite_config(tmp_path / "tokens", lambda c: c["networks"]["model"]["prior"].update(length=99))
    with pytest.raises(ModelFileError):
        TokenGenerator.load(tmp_path / "tokens")


def test_cli_trains_and_samples_a_token_generator(tmp_path, capsys):
    model = tmp_path / "tokens"
    assert main(["generate", "train", "digits", "--out", str(model), "--generator", "tokens", "--epochs", "2",
                 "--prior-epochs", "2", "--codebook-size", "8", "--quiet"]) == 0
    assert "VQ-VAE (8 tokens)" in capsys.readouterr().out
    assert main(["generate", "sample", "--model", str(model), "-n", "4", "--out", str(tmp_path / "grid.png"),
                 "--npz", str(tmp_path / "s.npz")]) == 0
    assert np.load(tmp_path / "s.npz")["images"].shape == (4, 1, 8, 8)
    assert main(["generate", "interpolate", "digits:0", "digits:1", "--model", str(model),
                 "--out", str(tmp_path / "strip.png"), "--steps", "4"]) == 0
    assert (tmp_path / "strip.png").read_bytes()[:4] == b"\x89PNG"
