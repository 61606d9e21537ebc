"""The discrete-code applications: clustering, binary hashing, VQ-VAE, and their CLI."""
from __future__ import annotations

import shutil
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from aekit.apps.codes import (
    AutoEncoderClustering,
    BinaryHasher,
    VQAutoEncoder,
    hamming_distances,
    hamming_search,
    matched_accuracy,
    mean_average_precision,
)
from aekit.apps.codes.hashing import bit_health
from aekit.cli import main
from aekit.data.images import load_images
from aekit.errors import DataError, DataNotice

from .conftest import rewrite_config

SMALL = dict(hidden=64, channels=(16, 32), random_state=0)


@pytest.fixture(scope="module")
def digits():
    d = load_images("digits")
    return d.images[:600], d.labels[:600]


def test_small_clustering_beats_kmeans_on_pixels(tmp_path):
    d = load_images("digits")
    x, y = d.images, d.labels  # labels only score the clusters
    model = AutoEncoderClustering(10, epochs=20, **SMALL).fit(x)
    ours = matched_accuracy(y, model.labels_)
    kmeans = matched_accuracy(y, KMeans(10, n_init=10, random_state=0).fit_predict(x.reshape(len(x), -1)))
    assert ours > kmeans + 0.05, (ours, kmeans)  # measured 0.910 vs 0.792
    assert set(np.unique(model.labels_)) == set(range(10))
    assert (model.predict(x[:100]) == model.labels_[:100]).mean() > 0.9  # predict agrees with the fit
    model.save(tmp_path / "c")
    loaded = AutoEncoderClustering.load(tmp_path / "c")
    np.testing.assert_array_equal(loaded.predict(x[:50]), model.predict(x[:50]))
    assert matched_accuracy([0, 0, 1, 1], [5, 5, 3, 3]) == 1.0


def uneven_bands(n: int = 300, seed: int = 0):
    """Three long parallel bands (a group each) in columns of units 1,000 and 0.01, and two
    noise columns: k-means cuts across the bands, a neighbour layout follows them."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    along = rng.uniform(0, 10, n) * 1000.0
    across = (group * 1.5 + rng.normal(0, 0.1, n)) * 0.01
    noise = rng.normal(0, 0.3, (n, 2))
    return pd.DataFrame({"along": along, "across": across, "n1": noise[:, 0], "n2": noise[:, 1]}), group


def test_table_path_beats_kmeans_on_unevenly_scaled_groups():
    from sklearn.preprocessing import StandardScaler

    X, y = uneven_bands()
    model = AutoEncoderClustering(3, random_state=0).fit(X)
    ours = matched_accuracy(y, model.labels_)
    kmeans = matched_accuracy(y, KMeans(3, n_init=10, random_state=0).fit_predict(StandardScaler().fit_transform(X)))
    assert ours > 0.9 and ours > kmeans + 0.2, (ours, kmeans)
    assert (model.predict(X) == model.labels_).mean() > 0.9  # predict on the training rows agrees with the fit
    assert float(model._inputs(X).abs().max()) <= model.clip == 3.0  # scaled columns are clipped at 3 units
    # a 2-D array is a table too: scaled by column like a CSV, the same clusters
    np.testing.assert_array_equal(AutoEncoderClustering(3, random_state=0).fit(X.to_numpy()).labels_, model.labels_)
    # UMAP, the layout of large data (embedding="auto" from 10,000 samples), follows the bands too
    assert matched_accuracy(y, AutoEncoderClustering(3, embedding="umap", random_state=0).fit(X).labels_) > 0.9


def test_a_label_or_a_time_among_a_tables_features_is_named_in_a_note():
    """Every model fitted on a table gives its preprocessor's notes, clustering too."""
    X, y = uneven_bands()
    table = X.assign(label=y, t=np.arange(len(X), dtype=float))
    with pytest.warns(DataNotice) as notes:
        AutoEncoderClustering(3, epochs=1, embedding="none", random_state=0).fit(table)
    said = " ".join(str(n.message) for n in notes)
    assert "['label'] named like a label" in said and "['t'] never decrease down the training rows" in said


def test_bad_k_and_code_size_give_clear_errors(digits):
    x, _ = digits
    with pytest.raises(ValueError, match="n_clusters must be in \\[2, 10000\\]"):
        AutoEncoderClustering(1).fit(x)
    with pytest.raises(ValueError, match="code_size must be in"):
        AutoEncoderClustering(10, code_size=0).fit(x)
    with pytest.raises(ValueError, match="clip must be > 0"):
        AutoEncoderClustering(10, clip=0).fit(x)
    with pytest.raises(DataError, match="at least 20 samples"):
        AutoEncoderClustering(10).fit(x[:15])
    with pytest.raises(ValueError, match="n_bits"):
        BinaryHasher(0).fit(x)
    with pytest.raises(ValueError, match="codebook_size"):
        VQAutoEncoder(1).fit(x)
    with pytest.raises(DataError, match="marks missing numbers with .n/a."):  # a table's numbers column with a marker
        AutoEncoderClustering(2).fit(pd.DataFrame({"a": [str(i) for i in range(29)] + ["n/a"], "b": range(30)}))


def test_hamming_search_matches_brute_force():
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, size=(500, 5), dtype=np.uint8)  # 40 bits: padded to one 64-bit word
    q = rng.integers(0, 256, size=(7, 5), dtype=np.uint8)
    bits = lambda a: np.unpackbits(a, axis=1).astype(int)  # noqa: E731
    brute = np.abs(bits(q)[:, None] - bits(db)[None]).sum(-1)
    np.testing.assert_array_equal(hamming_distances(db, q), brute)
    idx, dist = hamming_search(db, q, k=5)
    np.testing.assert_array_equal(dist, np.sort(brute, axis=1)[:, :5])
    np.testing.assert_array_equal(np.take_along_axis(brute, idx, 1), dist)


def test_binary_hasher_beats_sign_pca_and_round_trips(digits, tmp_path):
    x, y = digits
    train, test = slice(0, 450), slice(450, 600)
    hasher = BinaryHasher(32, epochs=30, finetune_epochs=30, **SMALL).fit(x[train])
    packed = hasher.hash(x[test])
    assert packed.shape == (150, 4) and packed.dtype == np.uint8
    ours = mean_average_precision(hasher.hash(x[train]), y[train], packed, y[test])
    flat = x.reshape(len(x), -1)
    pca = PCA(32, random_state=0).fit(flat[train])
    sign = lambda a: np.packbits((pca.transform(a) > 0).astype(np.uint8), axis=1)  # noqa: E731
    assert ours > mean_average_precision(sign(flat[train]), y[train], sign(flat[test]), y[test]) + 0.1
    health = hasher.training_history_[hasher.epochs - 1]  # logged per epoch of the first stage
    assert health["bits_used"] >= 24 and health["codes_used"] > 200  # of 450 images: no dead bits, no collapse
    # the final codes' (after the neighbour stage), which the command prints
    assert hasher.code_health_ == bit_health(hasher.encode(x[train])) and hasher.code_health_["bits_used"] >= 24
    bits = hasher.encode(x[:3])
    assert set(np.unique(bits)) <= {0, 1} and hasher.decode_bits(bits).shape == (3, 1, 8, 8)
    hasher.save(tmp_path / "h")
    np.testing.assert_array_equal(BinaryHasher.load(tmp_path / "h").hash(x[:20]), hasher.hash(x[:20]))
    shutil.copytree(tmp_path / "h", tmp_path / "old")  # saved before 0.9.15: no activation, ReLU networks
    rewrite_config(tmp_path / "old", lambda c: c["params"].pop("activation"))
    assert BinaryHasher.load(tmp_path / "old").activation == "relu" and hasher.activation == "leaky_relu"
    with pytest.raises(ValueError, match="bits must be 0/1"):
        hasher.decode_bits(np.full((1, 32), 2))


def _photo_crops(n: int, height: int, width: int) -> np.ndarray:
    """``n`` random crops of four colour photos that ship with scikit-image, ``[n, 3, H, W]``."""
    from skimage import data as samples

    rng = np.random.default_rng(0)
    photos = [samples.astronaut(), samples.chelsea(), samples.coffee(), samples.rocket()]
    crops = []
    for i in range(n):
        photo = photos[i % 4]
        top, left = rng.integers(0, photo.shape[0] - height), rng.integers(0, photo.shape[1] - width)
        crops.append(photo[top:top + height, left:left + width])
    return np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2) / 255


def test_binary_codes_of_colour_photos_do_not_collapse_to_one():
    """Crops of four colour photos. The defaults before 0.9.15 made every photo's code the same
    ("0 bits in use", as 80 flower photos got from the command): ReLU networks, whose encoder
    died in the first steps in 3 seeds of 4 here and in 1 of 3 on the flowers (every unit at
    zero: the same logits for every input), before 0.9.12 without a bit-balance loss too."""

    x = _photo_crops(60, 64, 64)

    def health(seed: int, **params: Any) -> dict[str, float]:
        return bit_health(BinaryHasher(16, epochs=12, finetune_epochs=0, random_state=seed, **params).fit(x).encode(x))

    assert health(0, activation="relu", balance=0.0)["codes_used"] == 1  # 0.9.11's defaults
    assert health(2, activation="relu")["codes_used"] == 1  # 0.9.12's to 0.9.14's
    for seed in (0, 2):
        found = health(seed)
        assert found["bits_used"] >= 8 and found["codes_used"] >= 8
    # codes that vary in under half their bits are named in a note
    with pytest.warns(DataNotice, match=r"only 0 of 16 bits vary over the training samples \(1 distinct codes among "
                                        r"60\): train longer"):
        BinaryHasher(16, epochs=12, finetune_epochs=0, random_state=2, activation="relu").fit(x)


def test_vq_autoencoder_uses_its_codebook_and_round_trips(digits, tmp_path):
    x, _ = digits
    vq = VQAutoEncoder(16, positions=2, epochs=40, **SMALL).fit(x)
    assert vq.bits_ == 8
    health = vq.health(x)
    assert health["codes_used"] >= 12 and 0 < health["perplexity_ratio"] <= 1  # no collapse
    assert {"codes_used", "perplexity", "perplexity_ratio", "dead_restarts"} <= set(vq.training_history_[-1])
    tokens = vq.encode(x[:10])
    assert tokens.shape == (10, 2, 1)
    np.testing.assert_allclose(vq.decode(tokens), vq.reconstruct(x[:10]), atol=1e-5)
    mean_image_psnr = float(np.mean(10 * np.log10(1 / ((x - x.mean(0)) ** 2).reshape(len(x), -1).mean(1))))
    assert vq.psnr(x) > mean_image_psnr + 0.5  # 8 bits per image: 12.4 dB vs 11.5 for the mean image
    vq.save(tmp_path / "v")
    np.testing.assert_array_equal(VQAutoEncoder.load(tmp_path / "v").encode(x[:20]), vq.encode(x[:20]))
    shutil.copytree(tmp_path / "v", tmp_path / "old")  # saved before 0.9.14: no activation, ReLU networks
    rewrite_config(tmp_path / "old", lambda c: c["params"].pop("activation"))
    assert VQAutoEncoder.load(tmp_path / "old").activation == "relu" and vq.activation == "leaky_relu"
    with pytest.raises(DataError, match="tokens run from 99 to 99; this model's codebook holds 0 to 15"):
        vq.decode(np.full((1, 2, 1), 99))
    with pytest.raises(DataError, match=r"tokens of shape \(1, 3, 1\) given to a model whose tokens are \[N, 2, 1\]"):
        vq.decode(np.zeros((1, 3, 1), np.int64))
    # the command line: images to tokens to images, the same as in Python
    folder = str(tmp_path / "v")
    assert main(["vq", "encode", "digits", "--model", folder, "--out", str(tmp_path / "t.npz")]) == 0
    stored = np.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(stored["tokens"], vq.encode(load_images("digits").images))
    assert main(["vq", "decode", str(tmp_path / "t.npz"), "--model", folder, "--out", str(tmp_path / "d.png"),
                 "--npz", str(tmp_path / "d.npz")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "d.npz")["images"], vq.decode(stored["tokens"]), atol=1e-6)
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    # other image sizes are converted like the training images (the image adapter), not refused
    assert vq.encode(np.zeros((2, 1, 9, 9), np.float32)).shape == (2, 2, 1)
    with pytest.raises(DataError, match="fitted on"):  # a plain array of another width is refused
        VQAutoEncoder(8, positions=1, dim=4, epochs=1).fit(x.reshape(len(x), -1)).encode(np.zeros((2, 9)))


def test_vq_codes_of_colour_photos_do_not_collapse():
    """150 crops of four colour photos at 128x85, the size a folder of photos is read at: with
    ReLU networks the encoder died in the first steps in some seeds (5 codes of 64 in use
    here, one image drawn whatever the input; 4 on 150 flower photos, PSNR 11.1 dB against
    the mean image's 11.5)."""
    x = _photo_crops(150, 85, 128)
    vq = VQAutoEncoder(epochs=10, random_state=1).fit(x)
    assert vq.health(x)["codes_used"] >= 16  # 24 of 64 measured


def test_cli_cluster_hash_vq(tmp_path, capsys):
    folder = tmp_path / "imgs"
    from PIL import Image

    d = load_images("digits")
    for i in range(60):
        sub = folder / str(d.labels[i])
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray((d.images[i, 0] * 255).astype(np.uint8)).save(sub / f"{i}.png")
    t = str(tmp_path)
    assert main(["cluster", "fit", str(folder), "--k", "3", "--out", t + "/c", "--epochs", "2", "--quiet"]) == 0
    assert "not used to fit" in capsys.readouterr().out
    assert main(["cluster", "predict", str(folder), "--model", t + "/c", "--out", t + "/c.csv"]) == 0
    assert main(["hash", "train", str(folder), "--bits", "16", "--out", t + "/h", "--epochs", "2", "--quiet",
                 "--health-png", t + "/bits.png"]) == 0
    assert (tmp_path / "bits.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["hash", "encode", str(folder), "--model", t + "/h", "--out", t + "/db.npz"]) == 0
    assert main(["hash", "search", str(folder), "--model", t + "/h", "--database", t + "/db.npz", "-k", "3",
                 "--out", t + "/r.csv"]) == 0
    assert main(["hash", "bits", "digits:0", "--model", t + "/h", "--out", t + "/flips.png"]) == 0
    assert main(["vq", "train", str(folder), "--out", t + "/v", "--codebook-size", "8", "--positions", "2",
                 "--epochs", "2", "--codebook-png", t + "/cb.png", "--health-png", t + "/health.png", "--quiet"]) == 0
    assert (tmp_path / "health.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # argparse: a one-line usage error, exit 2
        main(["cluster", "fit", str(folder), "--k", "0", "--out", t + "/x"])
    assert exit_.value.code == 2
    assert "--k" in capsys.readouterr().err
    table, _ = uneven_bands(60)
    table.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["cluster", "train", t + "/rows.csv", "--k", "3", "--clip", "2", "--out", t + "/tc", "--epochs", "2",
                 "--quiet"]) == 0
    assert AutoEncoderClustering.load(t + "/tc").adapter_.preprocessor.clip == 2.0  # the table's limit is saved
    with pytest.raises(SystemExit):
        main(["cluster", "fit", t + "/rows.csv", "--k", "3", "--clip", "0", "--out", t + "/tx"])
    assert "--clip" in capsys.readouterr().err
    assert main(["hash", "search", str(folder), "--model", t + "/h", "--database", t + "/c.csv", "--out", t + "/x"]) == 2


def test_cli_tables_keep_labels_and_ids_out_of_the_features(tmp_path, capsys):
    """A table's label column only scores the clusters and its ID column names the rows; both
    kept out of the features (an ID was refused as a feature, a label told the clusters)."""
    table, group = uneven_bands(120)
    table.insert(0, "id", [f"p{i:03d}" for i in range(len(table))])
    table["kind"] = np.array(["a", "b", "c"])[group]
    table.to_csv(tmp_path / "rows.csv", index=False)
    t = str(tmp_path)
    assert main(["cluster", "fit", t + "/rows.csv", "--k", "3", "--out", t + "/c", "--epochs", "2", "--quiet"]) == 2
    assert "column 'id' is text with 120 different values" in capsys.readouterr().err
    assert main(["cluster", "fit", t + "/rows.csv", "--k", "3", "--out", t + "/c", "--epochs", "2", "--quiet",
                 "--id-col", "id", "--label-col", "kind"]) == 0
    assert "against the source's labels (not used to fit): accuracy" in capsys.readouterr().out
    assert AutoEncoderClustering.load(t + "/c").adapter_.preprocessor.columns_ == ["along", "across", "n1", "n2"]
    assert main(["cluster", "predict", t + "/rows.csv", "--model", t + "/c", "--out", t + "/c.csv", "--id-col", "id"]) == 0
    assert pd.read_csv(tmp_path / "c.csv")["sample"].tolist()[:2] == ["p000", "p001"]
    # the label column is no feature of the model: left out of the rows read, and said so
    assert "note: column(s) ['kind'] are not features of this model: left out" in capsys.readouterr().out
    assert main(["hash", "fit", t + "/rows.csv", "--out", t + "/h", "--epochs", "2", "--quiet", "--id-col", "id",
                 "--label-col", "kind"]) == 0
    assert main(["hash", "encode", t + "/rows.csv", "--model", t + "/h", "--out", t + "/db.npz", "--id-col", "id"]) == 0
    assert main(["hash", "search", t + "/rows.csv", "--model", t + "/h", "--database", t + "/db.npz", "-k", "1",
                 "--out", t + "/r.csv", "--id-col", "id"]) == 0
    matches = pd.read_csv(tmp_path / "r.csv")
    assert matches["query"].iloc[0] == "p000" and matches["match"].str.startswith("p").all()
    capsys.readouterr()
    assert main(["cluster", "fit", "digits", "--k", "3", "--out", t + "/x", "--label-col", "kind"]) == 2
    assert "digits is an image source; --label-col names a table column" in capsys.readouterr().err
    # --drop-cols leaves columns out of the features; the models ignore them when they read new rows
    assert main(["vq", "train", t + "/rows.csv", "--out", t + "/v", "--epochs", "1", "--quiet", "--id-col", "id",
                 "--drop-cols", "kind,n2"]) == 0
    assert VQAutoEncoder.load(t + "/v").adapter_.preprocessor.columns_ == ["along", "across", "n1"]
    assert main(["vq", "encode", t + "/rows.csv", "--model", t + "/v", "--out", t + "/tok.npz", "--id-col", "id"]) == 0
    assert main(["hash", "fit", t + "/rows.csv", "--out", t + "/x", "--drop-cols", "kind,nope"]) == 2
    assert "--drop-cols: column(s) ['nope'] not found" in capsys.readouterr().err
    # missing values: an error that names the fix, which every fit verb takes
    table.loc[[5, 70], "n1"] = np.nan
    table.to_csv(tmp_path / "holes.csv", index=False)
    fit = {"cluster": ["cluster", "fit", t + "/holes.csv", "--k", "3"], "hash": ["hash", "fit", t + "/holes.csv"],
           "vq": ["vq", "train", t + "/holes.csv"]}
    for app, verb in fit.items():
        rest = ["--out", t + f"/{app}_holes", "--epochs", "1", "--quiet", "--id-col", "id", "--label-col", "kind"]
        assert main([*verb, *rest]) == 2
        assert "NaN or inf in column(s) ['n1']" in capsys.readouterr().err
        assert main([*verb, *rest, "--impute", "median"]) == 0
    capsys.readouterr()
    model = AutoEncoderClustering.load(t + "/cluster_holes")
    assert model.impute == "median" and len(model.predict(table.drop(columns=["id", "kind"]))) == len(table)
