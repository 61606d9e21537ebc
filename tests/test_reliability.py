"""The core under stress: resume of every estimator kind through the shared base, model
files that were tampered with and re-signed, concurrent writers and readers, permissions,
values beyond float32, adapters across estimators, and a cheap ``import aekit``."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from aekit import AnomalyDetector, ImageAnomalyDetector, ModelFileError, OutputError, VAEAnomalyDetector, io
from aekit import training as training_mod
from aekit.apps.anomaly import SeriesAnomalyDetector, load_detector
from aekit.apps.codes import AutoEncoderClustering, BinaryHasher, VQAutoEncoder
from aekit.apps.generate import TokenGenerator, VAEGenerator
from aekit.apps.summarize import Summarizer
from aekit.apps.tree import TreeAutoEncoder
from aekit.apps.voice import VoiceConverter
from aekit.cli import main
from aekit.data.images import load_bundled
from aekit.errors import DataError

from .conftest import rewrite_config

TINY = dict(epochs=3, verbose=0)
KINDS = {
    "AnomalyDetector": lambda: AnomalyDetector(n_estimators=2, batch_size=32, **TINY),
    "VAEAnomalyDetector": lambda: VAEAnomalyDetector(n_estimators=1, batch_size=32, **TINY),
    "ImageAnomalyDetector": lambda: ImageAnomalyDetector(n_estimators=2, channels=(4, 8), hidden=16, **TINY),
    "SeriesAnomalyDetector": lambda: SeriesAnomalyDetector(window=16, batch_size=32, **TINY),
    "VAEGenerator": lambda: VAEGenerator(channels=(4, 8), hidden=16, fitted_components=2, refine_epochs=2,
                                         codebook_size=4, **TINY),
    "TokenGenerator": lambda: TokenGenerator(channels=(4,), codebook_size=4, dim=2, prior_width=8, prior_layers=1,
                                             prior_epochs=2, batch_size=32, **TINY),
    "AutoEncoderClustering": lambda: AutoEncoderClustering(3, code_size=4, hidden=16, embedding="none", **TINY),
    "BinaryHasher": lambda: BinaryHasher(8, hidden=16, finetune_epochs=2, **TINY),
    "VQAutoEncoder": lambda: VQAutoEncoder(8, positions=2, dim=2, hidden=16, **TINY),
    "VoiceConverter": lambda: VoiceConverter(hidden=16, code_channels=4, style_size=4, layers=2, segment_frames=16,
                                             batch_size=8, **TINY),
    "Summarizer": lambda: Summarizer(summary_words=4, embed_size=8, hidden=8, prior_hidden=8, prior_epochs=2,
                                     batch_size=16, **TINY),
    "TreeAutoEncoder": lambda: TreeAutoEncoder(nonterminals=3, preterminals=4, dim=8, batch_size=16, **TINY),
}


@pytest.fixture(scope="module")
def data(cancer):
    X, y = cancer
    digits = load_bundled("digits")
    rng = np.random.default_rng(0)
    waves = [(0.1 * np.sin(np.arange(8000) * (0.05 + 0.01 * i)) + 0.01 * rng.normal(size=8000)).astype(np.float32)
             for i in range(6)]
    words = ["police", "rescue", "two", "workers", "in", "Lima", "after", "floods", "rebels", "find"]
    text = [" ".join(rng.choice(words, size=int(rng.integers(4, 12)))) + "." for _ in range(60)]
    return {"table": X[y == 0].iloc[:120], "images": digits.images[:90], "audio": waves, "text": text}


def _data_for(kind: str, data):
    if kind == "SeriesAnomalyDetector":
        return data["audio"][0][:1200]
    if kind in ("VoiceConverter", "Summarizer", "TreeAutoEncoder"):
        return data["audio" if kind == "VoiceConverter" else "text"]
    return data["table"] if kind in ("AnomalyDetector", "VAEAnomalyDetector") else data["images"]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("kind", list(KINDS))
def test_interrupted_training_resumes_to_the_same_model(kind, data, tmp_path, monkeypatch):
    """Killed after its 2nd checkpoint, then resumed: the same model as an uninterrupted run
    (one test through the shared base for every estimator kind)."""
    X = _data_for(kind, data)
    KINDS[kind]().fit_to(X, tmp_path / "straight")
    real_save, calls = training_mod._save_checkpoint, []

    def save_then_die(*args):
        real_save(*args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed right after a checkpoint

    monkeypatch.setattr(training_mod, "_save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        KINDS[kind]().fit_to(X, tmp_path / "resumed")
    monkeypatch.setattr(training_mod, "_save_checkpoint", real_save)
    assert (tmp_path / "resumed.ckpt").is_dir() and not (tmp_path / "resumed").exists()
    torch.manual_seed(1234)  # a different global state: everything must come from the checkpoint
    KINDS[kind]().fit_to(X, tmp_path / "resumed", resume=True)
    assert not (tmp_path / "resumed.ckpt").exists()
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def _stopped_after_first_checkpoint(est, X, out: Path, monkeypatch) -> None:
    """Train ``est`` into ``out`` until its first checkpoint is written, then stop as if killed."""
    real_save = training_mod._save_checkpoint

    def die(*args):
        real_save(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(training_mod, "_save_checkpoint", die)
    with pytest.raises(KeyboardInterrupt):
        est.fit_to(X, out)
    monkeypatch.setattr(training_mod, "_save_checkpoint", real_save)


def test_resume_refuses_a_checkpoint_of_other_data(data, tmp_path, monkeypatch):
    X = data["table"]
    _stopped_after_first_checkpoint(KINDS["AnomalyDetector"](), X, tmp_path / "m", monkeypatch)
    with pytest.raises(ModelFileError, match="other data"):
        KINDS["AnomalyDetector"]().fit_to(X.iloc[:100], tmp_path / "m", resume=True)
    with pytest.raises(ModelFileError, match="other settings"):
        AnomalyDetector(n_estimators=2, batch_size=16, epochs=3).fit_to(X, tmp_path / "m", resume=True)


def test_resume_with_other_settings_names_the_setting_not_the_data(data, tmp_path, monkeypatch):
    """``summarize train --resume --words 5`` after a run at 4: the summary length changes the
    training tensors too, but the message must name the setting that changed."""
    _stopped_after_first_checkpoint(KINDS["Summarizer"](), data["text"], tmp_path / "s", monkeypatch)
    other = KINDS["Summarizer"]().set_params(summary_words=5)
    with pytest.raises(ModelFileError, match=r"other settings \(summary_words: 4 -> 5\)"):
        other.fit_to(data["text"], tmp_path / "s", resume=True)


def test_a_second_training_into_the_same_output_is_refused(data, tmp_path):
    with io.training_lock(tmp_path / "m.ckpt"):
        with pytest.raises(OutputError, match="another aekit training"):
            KINDS["AnomalyDetector"]().fit_to(data["table"], tmp_path / "m")


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "m"
    KINDS["AnomalyDetector"]().fit(data["table"]).save(path)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda c: c["state"]["threshold"].update(threshold=None), "threshold must be a finite number"),
    (lambda c: c["state"]["threshold"].pop("threshold"), "config.json is invalid"),
    (lambda c: c["adapter"].update(scale=[0.0] * len(c["adapter"]["scale"])), "scale > 0"),
    (lambda c: c["adapter"].update(scale=c["adapter"]["scale"][:3]), "centre and scale values"),
    (lambda c: c["networks"]["member0"]["decoder"].update(hidden=[10 ** 9]), "hidden must be in"),
    (lambda c: c["networks"]["member0"]["bottleneck"].update(code_size=3), "weights do not match"),
    (lambda c: c["params"].update(colour="red"), "unexpected keyword argument 'colour'"),
    (lambda c: c["params"].update(n_estimators="three"), "n_estimators must be an integer"),
    (lambda c: c["params"].update(latent_weight=-1), "latent_weight must be >= 0"),
    (lambda c: c["state"]["local"].update(scale=-1.0), "local term's scale must be a finite number >= 0"),
    (lambda c: c["state"].update(local="near"), "the local term must be an object"),
    (lambda c: c.update(adapter={"type": "video"}), "unknown data adapter"),
])
def test_a_tampered_and_re_signed_config_is_refused_in_one_line(saved, tmp_path, change, message):
    path = tmp_path / "m"
    path.mkdir()
    for f in saved.iterdir():
        (path / f.name).write_bytes(f.read_bytes())
    rewrite_config(path, change)
    with pytest.raises(ModelFileError, match=message) as err:
        load_detector(path)
    assert "\n" not in str(err.value)


def test_an_unsigned_edit_and_nan_are_refused(saved, tmp_path):
    path = tmp_path / "m"
    path.mkdir()
    for f in saved.iterdir():
        (path / f.name).write_bytes(f.read_bytes())
    text = (path / "config.json").read_text()
    (path / "config.json").write_text(text.replace('"contamination": 0.1', '"contamination": 0.2'))
    with pytest.raises(ModelFileError, match="modified or corrupted"):
        load_detector(path)
    (path / "config.json").write_text(text.replace('"contamination": 0.1', '"contamination": NaN'))
    with pytest.raises(ModelFileError, match="corrupted"):
        load_detector(path)


def test_readers_see_the_old_or_the_new_model_while_a_writer_saves(saved, data, tmp_path):
    det = load_detector(saved)
    path = det.save(tmp_path / "m")
    errors, stop = [], threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                load_detector(path)
            except Exception as exc:  # noqa: BLE001 - any error is a failure here
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(15):
        det.save(path)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no .tmp / .old left


def test_leftovers_of_dead_writers_are_cleaned(saved, tmp_path):
    det = load_detector(saved)
    dead = tmp_path / ".m.999999999.abcd.tmp"
    dead.mkdir()
    (tmp_path / ".m.999999999.ef01.old").mkdir()
    det.save(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_outputs_follow_the_umask(saved, tmp_path):
    det = load_detector(saved)
    old = os.umask(0o002)
    try:
        path = det.save(tmp_path / "m")
        io.atomic_write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert (path / "config.json").stat().st_mode & 0o777 == 0o664
    assert path.stat().st_mode & 0o777 == 0o775
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o664


def test_values_beyond_float32_are_named_and_extreme_values_score_finite(data):
    X = data["table"]
    det = KINDS["AnomalyDetector"]().fit(X)
    extreme = X.iloc[:2].copy()
    extreme.iloc[0, 0] = 1e30
    scores = det.decision_function(extreme)
    assert np.isfinite(scores).all() and scores[0] > 100 * max(det.threshold_, 1)
    assert det.explain(extreme).iloc[0].idxmax() == X.columns[0]
    extreme.iloc[0, 0] = 1e39
    with pytest.raises(DataError, match="float32"):
        det.decision_function(extreme)
    with pytest.raises(DataError, match="float32"):
        AnomalyDetector(impute="median", **TINY).fit(extreme.iloc[[0] * 10])


def test_any_detector_on_any_adapter(data, tmp_path, capsys):
    """The VAE detector on images, the codes applications on tables."""
    images = data["images"]
    vae = VAEAnomalyDetector(n_estimators=1, **TINY).fit(images)
    assert vae.adapter_.kind == "image" and vae.score_maps(images[:3])[1].shape == (3, 8, 8)
    clusters = AutoEncoderClustering(3, embedding="none", **TINY).fit(data["table"])
    assert clusters.adapter_.kind == "table" and set(clusters.predict(data["table"])) <= {0, 1, 2}
    table = tmp_path / "customers.csv"
    data["table"].to_csv(table, index=False)
    assert main(["cluster", "fit", str(table), "--k", "3", "--out", str(tmp_path / "c"), "--epochs", "2",
                 "--quiet"]) == 0
    assert "120 samples in 3 clusters" in capsys.readouterr().out
    folder = tmp_path / "imgs"
    folder.mkdir()
    np.savez(tmp_path / "imgs.npz", images=images)
    assert main(["anomaly", "train", str(tmp_path / "imgs.npz"), "--vae", "--out", str(tmp_path / "v"),
                 "--n-estimators", "1", "--epochs", "2", "--quiet"]) == 0
    assert type(load_detector(tmp_path / "v")).__name__ == "VAEAnomalyDetector"


def test_import_and_help_do_not_load_torch():
    code = ("import sys, aekit\n"
            "from aekit.cli import main\n"
            "for argv in (['--help'], ['anomaly', '--help'], ['vq', 'train', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_a_library_bug_is_not_disguised_as_a_user_error(monkeypatch, capsys, tmp_path):
    from aekit.apps.anomaly import jobs

    def bug(*a, **k):
        raise ValueError("internal: shapes do not line up")

    monkeypatch.setattr(jobs, "run_demo", bug)
    with pytest.raises(ValueError, match="internal"):
        main(["anomaly", "demo", "--out", str(tmp_path / "d")])


def test_config_has_the_documented_layout(saved):
    config = json.loads((saved / "config.json").read_text())
    assert {"format", "format_version", "aekit_version", "kind", "weights_sha256", "config_sha256", "params",
            "adapter", "networks", "state"} <= set(config)
    assert config["adapter"]["type"] == "table" and set(config["networks"]) == {"member0", "member1"}
    assert math.isfinite(config["state"]["threshold"]["threshold"])


def test_a_full_disk_is_one_line_and_leaves_no_half_model(data, tmp_path, capsys, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    table = tmp_path / "t.csv"
    data["table"].to_csv(table, index=False)
    monkeypatch.setattr(io, "save_safetensors_bytes", full)
    code = main(["anomaly", "train", str(table), "--out", str(tmp_path / "m"), "--n-estimators", "1", "--epochs", "2",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "the disk is full" in err, err
    assert not (tmp_path / "m").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left
