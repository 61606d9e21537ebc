"""The model directory: round trip, atomic writes, clear errors for bad directories."""
from __future__ import annotations

import json

import numpy as np
import pytest

from aekit import AnomalyDetector, ModelFileError, OutputError, VAEAnomalyDetector
from aekit import io as aeio
from aekit import marks
from aekit.apps.anomaly import load_detector

from .conftest import FAST


@pytest.fixture(scope="module")
def fitted(cancer_split):
    Xtr, _, _ = cancer_split
    return AnomalyDetector(**FAST).fit(Xtr)


def test_round_trip_gives_identical_scores(fitted, cancer_split, tmp_path):
    _, Xte, _ = cancer_split
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((path / "config.json").read_text())
    assert config["format_version"] == aeio.FORMAT_VERSION and config["aekit_version"]
    loaded = load_detector(path)
    np.testing.assert_array_equal(loaded.decision_function(Xte), fitted.decision_function(Xte))
    assert loaded.threshold_ == fitted.threshold_
    assert loaded.get_params() == {**fitted.get_params(), "checkpoint_dir": None}


def test_save_replaces_existing_model_and_leaves_no_temp_files(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    fitted.save(tmp_path / "m")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


def test_crash_during_save_keeps_the_old_model(fitted, tmp_path, monkeypatch):
    fitted.save(tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(aeio, "save_safetensors_bytes", crash)
    with pytest.raises(OutputError, match="disk full"):
        fitted.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    load_detector(tmp_path / "m")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]), "truncated"),
    (lambda d: (d / "model.safetensors").write_bytes(b"x" * 4000), "corrupted"),
    (lambda d: (d / "config.json").write_text("{\"format\": \"aekit-mo"), "corrupted or truncated"),
    (lambda d: (d / "config.json").unlink(), "not an aekit model directory"),
    (lambda d: (d / "config.json").write_text(json.dumps({"format": "other"})), "not an aekit model directory"),
    (lambda d: (d / "model.safetensors").unlink(), "incomplete"),
])
def test_damaged_model_dir_gives_one_line_error(fitted, tmp_path, damage, message):
    path = fitted.save(tmp_path / "m")
    damage(path)
    with pytest.raises(ModelFileError, match=message) as err:
        load_detector(path)
    assert "\n" not in str(err.value)


def test_newer_version_and_other_kind_are_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(ModelFileError, match="newer aekit"):
        load_detector(path)
    (path / "config.json").write_text(json.dumps({**cfg, "kind": "cluster.OneHotClusterer"}))
    with pytest.raises(ModelFileError, match="cluster.OneHotClusterer"):
        load_detector(path)
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="AnomalyDetector"):
        VAEAnomalyDetector.load(path)  # a plain AE directory is not a VAE


def test_extra_model_files_are_listed_names_only(fitted, tmp_path):
    path = fitted.save(tmp_path / "m")  # a table model: no score graph
    config, graph = aeio.read_model_file(path, (fitted._kind,), aeio.SCORE_GRAPH_FILE)
    assert graph is None and "files_sha256" not in config and sorted(p.name for p in path.iterdir()) == [
        "config.json", "model.safetensors"]
    with pytest.raises(ValueError, match="not among"):
        aeio.save_model(tmp_path / "other", fitted._kind, {}, {}, files={"../escape.bin": b"x"})
    with pytest.raises(ValueError, match="not among"):
        aeio.read_model_file(path, (fitted._kind,), "config.json")


def test_missing_path_and_file_instead_of_dir(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_detector(tmp_path / "nope")
    (tmp_path / "f").write_text("hi")
    with pytest.raises(ModelFileError, match="is a file"):
        load_detector(tmp_path / "f")


def test_no_pickle_anywhere_in_the_package():
    import pathlib

    import aekit

    src = pathlib.Path(aekit.__file__).parent
    for py in src.rglob("*.py"):
        text = py.read_text()
        assert "import pickle" not in text and "torch.load(" not in text, py


@pytest.mark.parametrize("header, kind", [
    ('"score","is_anomaly","top_features"', marks.ANOMALY_SCORES),  # Arrow's writer quotes
    ("id,score,is_anomaly,top_features,label", marks.ANOMALY_SCORES),
    ("image,score,is_anomaly,class", marks.ANOMALY_SCORES),
    ("timestamp,score,is_anomaly,top_channels", marks.ANOMALY_SCORES),
    ("sample,cluster", marks.CLUSTERS),
    ("query,rank,match,distance", marks.MATCHES),
    ("score,label,is_anomaly", None),
    ("sample,cluster,note", None),
    ("V1,V2,Class", None),
])
def test_a_csv_is_known_by_the_header_its_writer_writes(tmp_path, header, kind):
    (tmp_path / "f.csv").write_text(header + "\n1,2,3\n")
    assert marks.output_kind(tmp_path / "f.csv") == kind


def test_marks_are_found_in_what_aekit_writes_and_not_in_look_alikes(tmp_path):
    from PIL import Image

    from aekit import plots
    from aekit.data.audio import write_wav

    plots.write_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "b.png")  # a user's PNG
    write_wav(tmp_path / "a.wav", np.zeros(100, np.float32), 16000)
    np.savez(tmp_path / "a.npz", x=np.arange(3))
    np.savez(tmp_path / "b.npz", x=np.arange(3))
    marks.mark_zip(tmp_path / "b.npz", marks.CODES)
    (tmp_path / "c.npz").write_bytes(b"PK not a zip")
    (tmp_path / "a.txt").write_text("a summary\n")
    (tmp_path / "a.jsonl").write_text('{"line": 1, "tokens": ["a"], "spans": []}\n')
    (tmp_path / "b.jsonl").write_text('{"tokens": ["a"]}\n')
    found = {p.name: marks.output_kind(p) for p in sorted(tmp_path.iterdir())}
    assert found == {"a.png": marks.FIGURE, "b.png": None, "a.wav": marks.CONVERTED_SPEECH, "a.npz": None,
                     "b.npz": marks.CODES, "c.npz": None, "a.txt": None, "a.jsonl": marks.TREES, "b.jsonl": None}
    assert np.load(tmp_path / "b.npz")["x"].tolist() == [0, 1, 2]


def test_an_output_file_replaces_only_aekit_output_of_its_kind(tmp_path):
    user = tmp_path / "scores.csv"
    user.write_text("V1,V2\n1,2\n")
    with pytest.raises(OutputError, match="exists and aekit did not write it"):
        aeio.check_output_file(user, marks.ANOMALY_SCORES, suffixes=(".csv",))
    assert user.read_text() == "V1,V2\n1,2\n"
    user.write_text("sample,cluster\nx,1\n")
    with pytest.raises(OutputError, match="holds aekit's clusters output"):
        aeio.check_output_file(user, marks.ANOMALY_SCORES)
    assert aeio.check_output_file(user, marks.CLUSTERS) == user
    user.write_text("")
    assert aeio.check_output_file(user, marks.ANOMALY_SCORES) == user  # empty: nothing to lose
