"""Image models carry their score as an ONNX graph, which ``aekit anomaly score`` runs in
ONNX Runtime instead of torch: the same scores, CSV and heat maps, and a tampered graph is
refused, never run."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aekit import DataError, ImageAnomalyDetector, ModelFileError
from aekit.apps.anomaly import detector_classes
from aekit.apps.anomaly.jobs import score_file
from aekit.apps.anomaly.onnx_images import KINDS, OnnxImageScorer
from aekit.cli import main
from aekit.errors import DataNotice
from aekit.io import SCORE_GRAPH_FILE

from .conftest import rewrite_config


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A folder of 16x16 grey images (bright squares) and a model trained on most of them."""
    root = tmp_path_factory.mktemp("onnx_images")
    rng = np.random.default_rng(0)
    for folder, n in (("train", 40), ("test", 12)):
        (root / folder).mkdir()
        for i in range(n):
            image = rng.integers(0, 60, (16, 16), dtype=np.uint8)
            image[4:12, 4:12] = 200 if folder == "train" or i % 3 else 20  # every third test image is off
            Image.fromarray(image).save(root / folder / f"{i:02d}.png")
    with pytest.warns(DataNotice, match="6 training images were held out, fewer than 10"):
        det = ImageAnomalyDetector(epochs=2, n_estimators=2).fit(str(root / "train"))
    assert not det.threshold_rule_.held_out  # too few held out: the training images' scores
    det.save(root / "m")
    return root, det


def test_the_model_holds_its_graph_and_onnx_runtime_scores_as_torch_does(images):
    root, det = images
    config = json.loads((root / "m" / "config.json").read_text())
    assert set(config["files_sha256"]) == {SCORE_GRAPH_FILE} and (root / "m" / SCORE_GRAPH_FILE).is_file()
    assert set(KINDS) == set(detector_classes()) - {"anomaly.SeriesAnomalyDetector"}
    scorer = OnnxImageScorer.load(root / "m")
    x = np.random.default_rng(1).random((7, 1, 16, 16), dtype=np.float32)
    np.testing.assert_allclose(scorer.decision_function(x), det.decision_function(x), rtol=1e-4)
    np.testing.assert_allclose(scorer.anomaly_map(x), det.anomaly_map(x), rtol=1e-4, atol=1e-6)
    assert scorer.threshold_ == det.threshold_ and scorer.image_spec_ == det.image_spec_


def test_the_command_line_writes_what_the_torch_path_writes(images, tmp_path):
    root, det = images
    assert main(["anomaly", "score", str(root / "test"), "--model", str(root / "m"), "--out",
                 str(tmp_path / "fast.csv"), "--quiet", "--heatmaps", "3"]) == 0
    score_file(root / "test", det, tmp_path / "torch.csv", heatmaps=3, verbose=0)
    fast, slow = pd.read_csv(tmp_path / "fast.csv"), pd.read_csv(tmp_path / "torch.csv")
    assert list(fast.columns) == list(slow.columns) and (fast.image == slow.image).all()
    np.testing.assert_allclose(fast.score, slow.score, rtol=1e-4)
    assert (fast.is_anomaly == slow.is_anomaly).all() and fast.is_anomaly.sum() >= 1
    maps = sorted(p.name for p in (tmp_path / "fast_heatmaps").glob("*.png"))
    assert maps == sorted(p.name for p in (tmp_path / "torch_heatmaps").glob("*.png")) and len(maps) >= 2


@pytest.mark.parametrize("graph", [True, False])
def test_table_options_for_an_image_model_are_an_error(images, tmp_path, capsys, graph):
    root, _ = images
    model = root / "m" if graph else _without_graph(root / "m", tmp_path / "m")  # the torch path says the same
    assert main(["anomaly", "score", str(root / "test"), "--model", str(model), "--out", str(tmp_path / "s.csv"),
                 "--quiet", "--id-col", "name"]) == 2
    assert "--id-col is for tables" in capsys.readouterr().err and not (tmp_path / "s.csv").exists()


def test_a_tampered_graph_is_refused(images, tmp_path, capsys):
    root, _ = images
    shutil.copytree(root / "m", tmp_path / "m")
    graph = tmp_path / "m" / SCORE_GRAPH_FILE
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 1
    graph.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="score.onnx is corrupted"):
        OnnxImageScorer.load(tmp_path / "m")
    assert main(["anomaly", "score", str(root / "test"), "--model", str(tmp_path / "m"), "--out",
                 str(tmp_path / "s.csv"), "--quiet"]) == 2
    assert "score.onnx is corrupted" in capsys.readouterr().err and not (tmp_path / "s.csv").exists()
    rewrite_config(tmp_path / "m", lambda c: c.update(files_sha256="score.onnx"))  # re-signed by hand
    with pytest.raises(ModelFileError, match="'files_sha256' is not a mapping"):
        OnnxImageScorer.load(tmp_path / "m")


def _without_graph(model, copy):
    """A copy of ``model`` without its ONNX graph, as models saved before the graph."""
    shutil.copytree(model, copy)
    (copy / SCORE_GRAPH_FILE).unlink()
    rewrite_config(copy, lambda c: c.pop("files_sha256"))
    return copy


def test_a_model_without_the_graph_is_scored_in_torch(images, tmp_path):
    root, det = images
    _without_graph(root / "m", tmp_path / "m")
    assert OnnxImageScorer.load(tmp_path / "m") is None
    assert main(["anomaly", "score", str(root / "test"), "--model", str(tmp_path / "m"), "--out",
                 str(tmp_path / "s.csv"), "--quiet", "--heatmaps", "0"]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score,
                               det.decision_function(str(root / "test")), rtol=1e-5)


def _with_unreadable_files(root, folder):
    """A copy of the test images with an empty file, a PNG cut short and a text file among them."""
    shutil.copytree(root / "test", folder)
    (folder / "00a_empty.png").write_bytes(b"")
    (folder / "05a_cut.png").write_bytes((root / "test" / "05.png").read_bytes()[:80])
    (folder / "11a_text.png").write_text("not an image")
    return folder


@pytest.mark.parametrize("graph", [True, False])
def test_unreadable_files_stop_the_command_or_are_left_out_and_named(images, tmp_path, capsys, graph):
    """One corrupt file among thousands: an error naming it (and the others of its chunk) that
    says how to go on, or with --skip-unreadable the rest scored exactly as without it, and
    the files left out named by reason; chunks smaller than the folder change nothing."""
    root, det = images
    model = root / "m" if graph else _without_graph(root / "m", tmp_path / "m")  # the torch path says the same
    folder = _with_unreadable_files(root, tmp_path / "mixed")
    command = ["anomaly", "score", str(folder), "--model", str(model), "--heatmaps", "2", "--chunk-rows", "5"]
    assert main([*command, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{folder / '00a_empty.png'} cannot be decoded as an image (an empty file)" in err
    assert "--skip-unreadable scores the rest" in err and err.count("\n") == 1
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s_heatmaps").exists()

    assert main([*command, "--out", str(tmp_path / "s.csv"), "--skip-unreadable"]) == 0
    out = capsys.readouterr().out
    assert "scored 12 images" in out
    assert "note: 1 image not scored, cannot be decoded as an image (an empty file): 00a_empty.png" in out
    assert "note: 1 image not scored, cannot be decoded as an image (the file is cut short): 05a_cut.png" in out
    assert "note: 1 image not scored, cannot be decoded as an image (not a format Pillow reads): 11a_text.png" in out
    got = pd.read_csv(tmp_path / "s.csv")
    assert got.image.tolist() == sorted(p.name for p in (root / "test").iterdir())
    np.testing.assert_allclose(got.score, det.decision_function(str(root / "test")), rtol=1e-4)

    assert main(["anomaly", "report", str(folder), "--model", str(model), "--out", str(tmp_path / "rep"), "--quiet",
                 "--skip-unreadable"]) == 0
    out = capsys.readouterr().out
    assert "scored 12 images" in out and out.count("not scored") == 3


def test_a_folder_of_unreadable_files_only_is_an_error_and_training_names_them_all(images, tmp_path, capsys):
    root, _ = images
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "a.png").write_bytes(b"")
    assert main(["anomaly", "score", str(tmp_path / "none"), "--model", str(root / "m"), "--out",
                 str(tmp_path / "s.csv"), "--skip-unreadable"]) == 2
    assert "the one image in" in capsys.readouterr().err and not (tmp_path / "s.csv").exists()
    folder = _with_unreadable_files(root, tmp_path / "mixed")
    with pytest.raises(DataError, match=r"^3 of the 15 images in .*mixed cannot be read: .*00a_empty.png cannot be "
                                        r"decoded as an image \(an empty file\); .*05a_cut.png .*; .*11a_text.png"):
        ImageAnomalyDetector(epochs=1).fit(str(folder))
