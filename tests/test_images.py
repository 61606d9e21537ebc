"""Image data adapter and convolutional blocks."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from aekit import AutoEncoder, DataError
from aekit.cli import main
from aekit.errors import DataNotice, ModelFileError
from aekit.data.images import ImageSpec, conform, load_images
from aekit.training import TrainConfig, evaluate_loss, train

from .conftest import rewrite_config


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_bundled_sets_ship_offline():
    digits = load_images("digits")
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.max() <= 1 and len(set(digits.labels)) == 10
    lfw = load_images("lfw_subset")
    assert lfw.images.shape == (200, 1, 25, 25) and lfw.labels[:100].all() and not lfw.labels[100:].any()


def test_a_folder_named_like_a_bundled_set_is_the_users_folder(tmp_path, monkeypatch):
    from aekit.data.images import image_chunks

    monkeypatch.chdir(tmp_path)
    for i in range(3):
        write_png(tmp_path / "digits" / f"{i}.png", np.full((8, 8), 40 * i, np.uint8))
    assert load_images("digits").images.shape == (3, 1, 8, 8)  # not scikit-learn's 1,797
    count, chunks = image_chunks("digits", ImageSpec(1, 8, 8), chunk=2)
    assert count == 3 and [len(c.images) for c in chunks] == [2, 1]


def test_folder_with_class_subfolders_gray_and_rgb_resized(tmp_path):
    rng = np.random.default_rng(0)
    write_png(tmp_path / "cats" / "a.png", rng.integers(0, 255, (10, 12, 3), dtype=np.uint8))
    write_png(tmp_path / "dogs" / "b.png", rng.integers(0, 255, (20, 24), dtype=np.uint8))
    out = load_images(tmp_path, ImageSpec(3, 16, 16))
    assert out.images.shape == (2, 3, 16, 16) and out.images.dtype == np.float32
    assert out.classes == ["cats", "dogs"] and out.labels.tolist() == [0, 1]
    gray = load_images(tmp_path, ImageSpec(1, 8, 8))
    assert gray.images.shape == (2, 1, 8, 8)
    with pytest.warns(DataNotice, match=r"1 of the 2 images in .* differ in size from the first \(12x10\); all "
                      r"were resized to 12x10, shapes not kept: choose a size with --image-size H W"):
        first = load_images(tmp_path)  # no spec: colour as one is, 12x10 the first where no two share a size
    assert first.images.shape == (2, 3, 10, 12)


def test_a_folder_is_read_in_colour_at_its_most_common_size(tmp_path):
    """Not as its first file: a gray crop sorted first made a folder of colour photos gray and
    tall (the flower photos, read as 78x128 gray instead of 128x96 colour)."""
    rng = np.random.default_rng(0)
    write_png(tmp_path / "0.png", rng.integers(0, 255, (30, 12), dtype=np.uint8))  # gray, a crop
    for i in range(1, 4):
        write_png(tmp_path / f"{i}.png", rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    phone = rng.integers(0, 255, (32, 24, 3), dtype=np.uint8)  # stored 24 wide, shown 32 wide
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(phone).save(tmp_path / "4.jpg", exif=exif)
    with pytest.warns(DataNotice, match=r"1 of the 5 images in .* differ in size from the most common \(32x24\)"):
        found = load_images(tmp_path)
    assert found.images.shape == (5, 3, 24, 32)
    np.testing.assert_array_equal(found.images[0, 0], found.images[0, 2])  # the gray one, in every channel
    assert load_images(tmp_path, size=(8, 8)).images.shape == (5, 3, 8, 8)


def test_a_list_of_image_files_is_an_image_source(tmp_path):
    """A user's own selection of files: it was "images must be numbers, got an array of <U14"."""
    from aekit import ImageAnomalyDetector

    rng = np.random.default_rng(0)
    files = []
    for i in range(10):
        write_png(tmp_path / f"{i}.png", rng.integers(0, 255, (8, 8), dtype=np.uint8))
        files.append(str(tmp_path / f"{i}.png"))
    det = ImageAnomalyDetector(epochs=1, n_estimators=1).fit(files)
    assert det.adapter_.spec == ImageSpec(1, 8, 8)
    np.testing.assert_allclose(det.decision_function(files[:3]), det.decision_function(str(tmp_path))[:3], rtol=1e-6)
    with pytest.raises(DataError, match=r"1 of the 2 image files do not exist: \['.*missing.png'\]"):
        det.decision_function([files[0], str(tmp_path / "missing.png")])


def test_the_cli_notes_images_resized_to_the_first_ones_size(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for i, size in enumerate([(16, 16), (14, 20), *[(16, 16)] * 6]):
        write_png(tmp_path / "mixed" / f"{i}.png", rng.integers(0, 255, size, dtype=np.uint8))
    assert main(["hash", "fit", str(tmp_path / "mixed"), "--out", str(tmp_path / "h"), "--epochs", "1", "--quiet"]) == 0
    assert "note: 1 of the 8 images in" in capsys.readouterr().out
    assert main(["hash", "fit", str(tmp_path / "mixed"), "--out", str(tmp_path / "h"), "--epochs", "1", "--quiet",
                 "--image-size", "16", "16"]) == 0
    assert "resized" not in capsys.readouterr().out  # a size chosen: nothing to say of the sizes


def test_large_photos_are_read_at_a_working_size_unless_one_is_chosen(tmp_path):
    from aekit.data.images import DEFAULT_IMAGE_SIDE

    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(683, 1024), (1100, 1100)]):  # over MAX_IMAGE_SIDE too: no longer refused
        write_png(tmp_path / f"{i}.png", rng.integers(0, 255, (h, w), dtype=np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        photos = load_images(tmp_path)
    notes = [str(w.message) for w in caught if w.category is DataNotice]
    assert notes[0].startswith(f"no two images in {tmp_path} share a size; the first is 1024x683: images are read at "
                               "128x85 (its shape, the longer side 128 pixels)")
    assert "1 of the 2 images" in notes[1] and "resized to 128x85" in notes[1] and len(notes) == 2
    assert photos.images.shape == (2, 1, 85, DEFAULT_IMAGE_SIDE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a chosen size: nothing to note
        assert load_images(tmp_path, size=(200, 300)).images.shape == (2, 1, 200, 300)


def test_bad_images_name_the_file(tmp_path):
    write_png(tmp_path / "ok.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png cannot be decoded"):
        load_images(tmp_path)
    (tmp_path / "broken.png").unlink()
    write_png(tmp_path / "big.png", np.zeros((9, 8), np.uint8))
    with pytest.raises(DataError, match="big.png is 8x9, expected 8x8 .resizing is off"):
        load_images(tmp_path, ImageSpec(1, 8, 8), resize=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_images(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        load_images(tmp_path / "nope")


def test_images_deeper_than_8_bits_keep_their_contrast(tmp_path):
    """Pillow's own conversion clips a 16-bit image at 255 (all but its darkest pixels white)."""
    from aekit.apps.compress.codec import read_rgb

    ramp = np.linspace(0, 65535, 64 * 32).reshape(32, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    Image.fromarray((ramp / 65535).astype(np.float32)).save(tmp_path / "unit.tif")
    Image.fromarray(ramp.astype(np.float32) * 100).save(tmp_path / "wide.tif")
    expected = np.round(ramp / 257)
    images = load_images(str(tmp_path / "deep.png")).images
    assert np.abs(images[0, 0] * 255 - expected).max() <= 0.5
    assert np.abs(read_rgb(tmp_path / "deep.png")[..., 0] - expected).max() <= 0.5
    assert np.abs(read_rgb(tmp_path / "unit.tif")[..., 1] - expected).max() <= 1
    with pytest.raises(DataError, match="wide.tif holds values up to 6.5535e"):
        read_rgb(tmp_path / "wide.tif")


def test_arrays_in_memory_are_read_as_an_npz_is():
    """uint8 0-255 or floats in [0, 1]; [N, H, W], [N, H, W, C] or [N, C, H, W] (the docs' list)."""
    from aekit.data.images import as_image_array

    rgb = np.random.default_rng(0).integers(0, 256, (3, 6, 5, 3), dtype=np.uint8)
    expected = rgb.transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(as_image_array(rgb), expected, atol=1e-7)
    np.testing.assert_allclose(as_image_array(rgb / 255.0), expected, atol=1e-7)
    np.testing.assert_allclose(as_image_array(expected), expected, atol=1e-7)
    assert as_image_array(rgb[..., 0]).shape == (3, 1, 6, 5)
    with pytest.raises(DataError, match="images must be numbers"):
        as_image_array(np.array([[["a"]]]))
    # whole numbers of another type, as np.array(image, dtype=int) gives: read as uint8 is (was "floats in [0, 1]")
    np.testing.assert_allclose(as_image_array(rgb.astype(np.int64)), expected, atol=1e-7)
    with pytest.raises(DataError, match=r"images of whole numbers must lie in 0..255 \(got 0..1020\)"):
        as_image_array(rgb.astype(np.int64) * 4)


def test_npz_arrays(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.full((3, 5, 5), 255, np.uint8), labels=[0, 1, 0])
    out = load_images(tmp_path / "a.npz", ImageSpec(1, 10, 10))
    assert out.images.shape == (3, 1, 10, 10) and np.allclose(out.images, 1) and out.labels.tolist() == [0, 1, 0]
    np.savez(tmp_path / "bad.npz", images=np.full((3, 5, 5), 7.0))
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        load_images(tmp_path / "bad.npz")
    with pytest.raises(DataError, match="expected 5x5"):
        conform(np.zeros((1, 1, 4, 4), np.float32), ImageSpec(1, 5, 5), resize=False)
    # Keras' layout (mnist.npz): the training images, then the test images, labels alike
    np.savez(tmp_path / "k.npz", x_train=np.zeros((2, 4, 4), np.uint8), y_train=[3, 4],
             x_test=np.full((1, 4, 4), 255, np.uint8), y_test=[5])
    out = load_images(tmp_path / "k.npz")
    assert out.images.shape == (3, 1, 4, 4) and out.images[2].min() == 1 and out.labels.tolist() == [3, 4, 5]
    np.savez(tmp_path / "k2.npz", x_train=np.zeros((2, 4, 4), np.uint8), x_test=np.zeros((1, 5, 5), np.uint8))
    with pytest.raises(DataError, match="differ in shape"):
        load_images(tmp_path / "k2.npz")
    np.savez(tmp_path / "k3.npz", images=np.zeros((2, 4, 4), np.uint8), labels=[1, 2, 3])
    with pytest.raises(DataError, match="2 images but labels of shape"):
        load_images(tmp_path / "k3.npz")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 25, 25), (3, 20, 30)])
def test_conv_autoencoder_shapes_and_spec_round_trip(shape):
    model = AutoEncoder.conv(shape, channels=(8, 16), hidden=32, code_size=4, batch_norm=True).eval()
    x = torch.rand(2, *shape)
    assert model.reconstruct(x).shape == (2, *shape) and model.encode(x).shape == (2, 4)
    clone = AutoEncoder.from_spec(model.spec())
    clone.load_state_dict(model.state_dict())
    torch.testing.assert_close(clone.eval().reconstruct(x), model.reconstruct(x))


def test_conv_autoencoder_learns_digits_better_than_the_mean_image():
    x = torch.from_numpy(load_images("digits").images)
    train_x, val_x = x[:1400], x[1400:]
    torch.manual_seed(0)
    model = AutoEncoder.conv((1, 8, 8), channels=(16, 32), hidden=64, code_size=8, reconstruction="mse")
    train(model, train_x, val_x, TrainConfig(epochs=60, lr=3e-3, batch_size=64, verbose=0))
    baseline = (val_x - train_x.mean(0)).pow(2).mean().item()
    assert evaluate_loss(model, val_x) < 0.35 * baseline


def test_image_detector_flags_other_digits_with_maps_and_round_trip(tmp_path):
    from sklearn.metrics import roc_auc_score

    from aekit.apps.anomaly import ImageAnomalyDetector, load_detector

    digits = load_images("digits")
    zeros = digits.images[digits.labels == 0]
    det = ImageAnomalyDetector(n_estimators=1, epochs=30, channels=(8, 16), hidden=32, code_size=4).fit(zeros[:120])
    test = np.concatenate([zeros[120:], digits.images[digits.labels == 1][:60]])
    labels = np.r_[np.zeros(len(zeros) - 120), np.ones(60)]
    scores, maps = det.score_maps(test)
    assert roc_auc_score(labels, scores) > 0.95
    # the training scores (what a contamination threshold reads) are leave-one-out: a
    # training image is not its own nearest reference, and a held-out one is scored as new
    train_idx, val_idx = det._split(120)
    np.testing.assert_allclose(det.decision_scores_[val_idx], det.decision_function(zeros[:120][val_idx]), rtol=1e-5)
    assert (det.decision_scores_[train_idx] > det.decision_function(zeros[:120][train_idx]) + 1e-3).all()
    # ... and a contamination threshold reads the held-out images' scores, which the network
    # was not trained on
    assert det.threshold_rule_.held_out and "held-out" in det.threshold_rule_.describe()
    assert det.threshold_ == pytest.approx(np.quantile(det.decision_scores_[val_idx], 0.9))
    assert maps.shape == (len(test), 8, 8) and maps.min() >= 0
    assert maps[labels == 1].sum() > maps[labels == 0].sum()
    det.save(tmp_path / "m")
    loaded = load_detector(tmp_path / "m")
    np.testing.assert_allclose(loaded.decision_function(test), scores, rtol=1e-5)
    assert loaded.threshold_rule_ == det.threshold_rule_ and loaded.threshold_ == det.threshold_
    assert loaded.set_threshold("contamination:0.2").threshold_ == pytest.approx(
        np.quantile(det.decision_scores_[val_idx], 0.8))
    rewrite_config(tmp_path / "m", lambda config: config["state"]["threshold"].update(held_out="yes"))
    with pytest.raises(ModelFileError, match="held_out"):
        load_detector(tmp_path / "m")
    with pytest.raises(DataError, match=r"float images must lie in \[0, 1\]"):
        det.decision_function(test * 255)
    big = np.repeat(np.repeat(test[:2], 2, axis=2), 2, axis=3)  # 16x16 images are resized to 8x8
    assert det.decision_function(big).shape == (2,)
    # the local term's search basis is saved; a model saved before it existed gets the same
    # basis from its references at load, and a basis of the wrong shape is refused
    torch.testing.assert_close(loaded.local_basis_, det.local_basis_)
    local = {"weight": det.local_weight_, "scale": det.local_scale_}
    loaded._set_local_state(local, {"references": det.local_references_})
    torch.testing.assert_close(loaded.local_basis_, det.local_basis_)
    np.testing.assert_allclose(loaded.decision_function(test), scores, rtol=1e-5)
    with pytest.raises(ModelFileError, match="basis"):
        loaded._set_local_state(local, {"references": det.local_references_, "basis": det.local_basis_[:-1]})


def test_relative_error_catches_smooth_non_faces_that_reconstruct_well():
    """The lecture's weak spot: non-face patches are smoother than faces, so their absolute
    reconstruction error is small. Relative to each image's own contrast it is not."""
    from sklearn.metrics import roc_auc_score

    from aekit.apps.anomaly import ImageAnomalyDetector

    lfw = load_images("lfw_subset")
    order = np.random.default_rng(0).permutation(100)
    train_x, test = lfw.images[order[:60]], np.concatenate([lfw.images[order[60:]], lfw.images[100:]])
    labels = np.r_[np.zeros(40), np.ones(100)]
    small = dict(n_estimators=1, epochs=30, channels=(8, 16), hidden=32, code_size=8, latent_weight=0, local_weight=0)
    auc = {w: roc_auc_score(labels, ImageAnomalyDetector(feature_weighting=w, **small).fit(train_x).decision_function(test))
           for w in ("global", "relative")}
    assert auc["relative"] > 0.95 and auc["relative"] > auc["global"] + 0.02, auc


def _exhaustive_distance(queries: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """1 - the mean cosine to the 5 most similar references, each under its best shift."""
    from aekit.apps.anomaly import neighbours

    shifted = neighbours.shifted_references(references)
    similarity = neighbours.unit_rows(queries) @ shifted.reshape(-1, shifted.shape[-1]).T
    return 1 - similarity.view(len(queries), 9, -1).amax(1).topk(5, dim=1).values.mean(1)


def _index(references: torch.Tensor, size: int = 64):
    from aekit.apps.anomaly import neighbours

    flat = references.flatten(1)
    return neighbours.reference_index(flat, tuple(references.shape[1:]), neighbours.principal_directions(flat, size))


def test_search_in_the_basis_finds_the_exhaustive_neighbours():
    """Ranked in a few principal directions and compared exactly, the candidates hold the 5
    nearest references of almost every image; with a full basis of every one."""
    from aekit.apps.anomaly import neighbours

    images = torch.from_numpy(load_images("digits").images)
    space = neighbours.to_space(images, 8, 8)
    exact = _exhaustive_distance(space[1000:], space[:1000])
    full = neighbours.neighbour_parts(space[1000:], _index(space[:1000])).sum(1)  # 64 directions of 64
    np.testing.assert_allclose(full, exact, rtol=1e-4)
    # 24 directions of 64: 99% of the images get the very same distance
    relative = ((neighbours.neighbour_parts(space[1000:], _index(space[:1000], 24)).sum(1) - exact) / exact).abs()
    assert float((relative < 1e-4).float().mean()) > 0.98 and float(relative.mean()) < 1e-3, relative.mean()
    # with 8 directions the candidates miss more often, and the distance comes out larger, never smaller
    coarse = neighbours.neighbour_parts(space[1000:], _index(space[:1000], 8)).sum(1)
    assert float((coarse - exact).min()) > -1e-5 and float(((coarse - exact) / exact).mean()) > float(relative.mean())


def test_local_term_is_the_cosine_distance_to_the_nearest_shifted_references(monkeypatch):
    from aekit.apps.anomaly import neighbours

    rng = np.random.default_rng(0)
    refs, queries = torch.from_numpy(rng.random((30, 1, 6, 6), np.float32)), torch.from_numpy(rng.random((7, 1, 6, 6), np.float32))
    parts = neighbours.neighbour_parts(queries, _index(refs))
    # brute force: each reference under its best shift, the five most similar averaged
    padded = torch.nn.functional.pad(refs, (1, 1, 1, 1))
    sims = torch.stack([neighbours.unit_rows(queries) @ neighbours.unit_rows(padded[:, :, 1 + dy:7 + dy, 1 + dx:7 + dx]).T
                        for dy, dx in neighbours.SHIFTS]).amax(0)
    np.testing.assert_allclose(parts.sum(1), 1 - sims.topk(5, dim=1).values.mean(1), atol=1e-5)
    assert (parts >= 0).all()
    # training images scored leave-one-out: each reference compared without its own copy
    own = neighbours.unit_rows(refs[:7].flatten(1)) @ neighbours.unit_rows(padded[:, :, 1:7, 1:7].flatten(1)).T
    alone = neighbours.neighbour_parts(refs[:7], _index(refs), torch.tensor([0, 1, 2, 3, 4, 5, -1])).sum(1)
    others = torch.stack([neighbours.unit_rows(refs[:7]) @ neighbours.unit_rows(padded[:, :, 1 + dy:7 + dy, 1 + dx:7 + dx]).T
                          for dy, dx in neighbours.SHIFTS]).amax(0)
    others[torch.arange(6), torch.arange(6)] = -2  # without itself (the last one keeps its own copy)
    np.testing.assert_allclose(alone, 1 - others.topk(5, dim=1).values.mean(1), atol=1e-5)
    assert float(own.diagonal().min()) > 1 - 1e-5 and float(alone[-1]) < float(alone[:-1].min())
    # an image seen in training, shifted by one pixel, is at distance 0 from its nearest reference
    monkeypatch.setattr(neighbours, "NEIGHBOURS", 1)
    shifted = torch.roll(torch.nn.functional.pad(refs[:1], (1, 1, 1, 1)), 1, 3)[:, :, 1:7, 1:7]
    assert float(neighbours.neighbour_parts(shifted, _index(refs)).sum()) < 1e-6
    # large images are compared at 32 pixels a side; maps come back on the pixels with the same totals
    big = torch.rand(2, 3, 64, 48)
    assert neighbours.to_space(big, 64, 48).shape == (2, 3, 32, 24)
    # the two matrix products are a Gaussian blur (zeros beyond the edge), then area averaging
    sigma = 64 * neighbours.BLUR_PER_SIDE
    radius = int(np.ceil(2 * sigma))
    kernel = torch.exp(-torch.arange(-radius, radius + 1.0) ** 2 / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).repeat(3, 1, 1, 1)
    blurred = torch.nn.functional.conv2d(big, kernel.view(3, 1, 1, -1), padding=(0, radius), groups=3)
    blurred = torch.nn.functional.conv2d(blurred, kernel.view(3, 1, -1, 1), padding=(radius, 0), groups=3)
    expected = torch.nn.functional.interpolate(blurred, size=(32, 24), mode="area")
    np.testing.assert_allclose(neighbours.to_space(big, 64, 48), expected, atol=1e-5)
    part = torch.rand(2, 3 * 32 * 24)
    np.testing.assert_allclose(neighbours.to_pixels(part, 3, 64, 48).flatten(1).sum(1), part.sum(1), rtol=1e-5)


def test_image_defaults_scale_with_the_data():
    from aekit.apps.anomaly import neighbours
    from aekit.apps.anomaly.images import auto_epochs

    assert auto_epochs(6000, 64) == 16 and auto_epochs(60, 64) == 100 and auto_epochs(10**6, 64) == 10
    assert [neighbours.error_blur_radius(s, s) for s in (8, 25, 28, 64)] == [0, 1, 1, 2]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_phone_photos_are_read_upright_as_viewers_show_them(tmp_path, orientation):
    """A phone stores a photo as the sensor saw it and tags how to turn it (EXIF orientation);
    every viewer turns it, so aekit's readers do too, with Pillow's own transpose as the truth."""
    from PIL import ImageOps

    from aekit.apps.compress.codec import read_rgb

    rng = np.random.default_rng(orientation)
    stored = Image.fromarray(rng.integers(0, 255, (6, 10, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.save(tmp_path / "phone.png", exif=exif)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "phone.png")))
    assert shown.shape[:2] == ((10, 6) if orientation >= 5 else (6, 10))
    np.testing.assert_array_equal(read_rgb(tmp_path / "phone.png"), shown)  # the codec keeps every pixel
    images = load_images(tmp_path / "phone.png").images  # the models' reader: [1, C, H, W] in [0, 1]
    np.testing.assert_allclose(images[0].transpose(1, 2, 0), shown / 255.0, atol=1e-6)


def test_transparent_parts_are_read_on_white_with_a_notice(tmp_path):
    """A logo's transparent background is stored as black: dropping the alpha channel showed
    a black box. Both readers lay it on white, as a viewer on a white page does, and say so."""
    from aekit.apps.compress.codec import read_rgb

    logo = np.zeros((20, 30, 4), np.uint8)
    logo[5:15, 5:25] = (200, 30, 30, 255)
    Image.fromarray(logo, "RGBA").save(tmp_path / "logo.png")
    Image.fromarray(logo, "RGBA").convert("P").save(tmp_path / "palette.png")  # a palette with a transparent entry
    Image.fromarray(logo[..., [0, 3]].copy(), "LA").save(tmp_path / "gray.png")
    for name in ("logo.png", "palette.png"):
        with pytest.warns(DataNotice, match="transparent parts are read laid on white"):
            rgb = read_rgb(tmp_path / name)
        assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[10, 10].tolist() == [200, 30, 30]
    with pytest.warns(DataNotice):
        gray = load_images(tmp_path / "gray.png").images
    assert gray.shape == (1, 1, 20, 30) and gray[0, 0, 0, 0] == 1.0 and gray[0, 0, 10, 10] == pytest.approx(200 / 255)
    logo[..., 3] = 255  # an alpha channel, every pixel opaque: read as it is, nothing to say
    Image.fromarray(logo, "RGBA").save(tmp_path / "opaque.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_rgb(tmp_path / "opaque.png")[0, 0].tolist() == [0, 0, 0]
