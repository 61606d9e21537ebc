"""`aekit anomaly ...` end to end on the documented recipes, and its user-error contract."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aekit import AnomalyDetector, marks
from aekit.apps.anomaly import load_detector
from aekit.apps.anomaly.image_scoring import OVERVIEW
from aekit.cli import main

from .conftest import make_card_rows

QUICK = ["--n-estimators", "2", "--epochs", "30", "--quiet"]


def run_ok(argv: list[str], capsys) -> str:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


@pytest.mark.parametrize("argv", [[], ["anomaly"], ["anomaly", "train"], ["anomaly", "score"], ["anomaly", "eval"],
                                  ["anomaly", "report"], ["anomaly", "demo"], ["generate", "train"],
                                  ["generate", "sample"], ["generate", "interpolate"], ["cluster", "fit"],
                                  ["cluster", "predict"], ["hash", "fit"], ["hash", "encode"], ["hash", "search"],
                                  ["hash", "bits"], ["vq", "train"], ["anomaly", "threshold"]])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    assert "usage: aekit" in capsys.readouterr().out


def test_kdd_recipe_train_score_eval(kdd_csv, tmp_path, capsys):
    model = tmp_path / "kdd_model"
    out = run_ok(["anomaly", "train", kdd_csv, "--out", model, "--label-col", "label", "--normal-value", "normal.",
                  "--threshold", "fpr:0.01", *QUICK], capsys)
    assert "trained on 600 rows, 41 columns" in out and "false-alarm rate 0.01" in out
    assert not (tmp_path / "kdd_model.ckpt").exists()  # checkpoints are removed once the model is saved

    scores = tmp_path / "scores.csv"
    out = run_ok(["anomaly", "score", kdd_csv, "--model", model, "--out", scores, "--label-col", "label", "--quiet"],
                 capsys)
    assert "scored 660 rows" in out and "unseen categories" in out
    unseen = next(line for line in out.splitlines() if line.startswith("unseen categories"))
    assert re.search(r": '\w+' \d+ rows \('[^']+'(, '[^']+')*; the model knows '[^']+'", unseen), unseen
    df = pd.read_csv(scores)
    assert list(df.columns) == ["score", "is_anomaly", "top_features", "label"]
    attack = df.label != "normal."
    assert df.is_anomaly[attack].mean() > 0.9 and df.is_anomaly[~attack].mean() < 0.1
    assert df.top_features[attack].str.contains("service|protocol_type|flag|count").all()

    out = run_ok(["anomaly", "eval", kdd_csv, "--model", model, "--label-col", "label", "--normal-value", "normal.",
                  "--report-dir", tmp_path / "rep", "--quiet"], capsys)
    auc = float(out.split("AUC-ROC")[1].split()[0])
    assert auc > 0.95 and "confusion matrix" in out
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {
        "scores_histogram.png", "roc_curve.png", "top_anomalies_contributions.png", "metrics.json",
        ".aekit-output"}  # the marker that lets a later report replace this one
    found = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert found["auc_roc"] == pytest.approx(auc, abs=1e-4)
    # each kind of attack on its own: its rows, the share flagged, its AUC-ROC against normal traffic
    assert sorted(found["classes"]) == ["neptune.", "normal.", "smurf."] and "by label value: rows" in out
    assert found["classes"]["normal."]["normal"] and found["classes"]["normal."]["auc_roc"] is None
    assert found["classes"]["smurf."]["rows"] == 30 and found["classes"]["smurf."]["flagged"] > 0.9
    assert min(found["classes"][a]["auc_roc"] for a in ("smurf.", "neptune.")) > 0.95


def test_card_recipe_with_log_amount_and_ids(card_csv, tmp_path, capsys):
    df = pd.read_csv(card_csv)
    df.insert(0, "txn_id", [f"t{i}" for i in range(len(df))])
    df["memo"] = [f"payment {i}" for i in range(len(df))]  # free text: left out with --drop-cols, ignored after
    df.to_parquet(tmp_path / "card.parquet", index=False)
    model = tmp_path / "card_model"
    run_ok(["anomaly", "train", tmp_path / "card.parquet", "--out", model, "--label-col", "Class",
            "--normal-value", "0", "--id-col", "txn_id", "--drop-cols", "memo,Time", "--log-columns", "Amount",
            "--vae", *QUICK], capsys)
    det = load_detector(model)
    assert type(det).__name__ == "VAEAnomalyDetector" and det.preprocessor_.log_columns == ["Amount"]
    assert not {"txn_id", "Class", "memo", "Time"} & set(det.preprocessor_.columns_)
    out = run_ok(["anomaly", "eval", tmp_path / "card.parquet", "--model", model, "--label-col", "Class",
                  "--id-col", "txn_id", "--report-dir", tmp_path / "rep", "--quiet"], capsys)
    assert float(out.split("AUC-ROC")[1].split()[0]) > 0.95
    unlabelled = tmp_path / "new.csv"
    df.drop(columns="Class").to_csv(unlabelled, index=False)
    out = run_ok(["anomaly", "report", unlabelled, "--model", model, "--out", tmp_path / "rep2", "--quiet"],
                 capsys)  # --out: --report-dir by the name train and score use
    assert "flagged" in out and not (tmp_path / "rep2" / "roc_curve.png").exists()
    assert (tmp_path / "rep2" / "scores_histogram.png").exists()
    scores = tmp_path / "s.csv"
    run_ok(["anomaly", "score", unlabelled, "--model", model, "--out", scores, "--id-col", "txn_id", "--quiet"], capsys)
    assert pd.read_csv(scores).columns[0] == "txn_id"


def test_missing_value_markers_are_read_as_missing_with_na_values(card_csv, tmp_path, capsys):
    """A UCI-style file ('?' for a missing value): refused with the fix, then trained and
    scored with it; the model keeps the markers, so scoring needs no flag."""
    df = pd.read_csv(card_csv).astype({"V3": object})
    df.loc[df.index % 7 == 0, "V3"] = "?"
    df.to_csv(tmp_path / "uci.csv", index=False)
    model, train = tmp_path / "m", ["anomaly", "train", tmp_path / "uci.csv", "--label-col", "Class", "--normal-value", "0"]
    assert main([str(a) for a in [*train, "--out", model, *QUICK]]) == 2
    assert "marks missing numbers with '?'" in capsys.readouterr().err
    run_ok([*train, "--out", model, "--na-values", "?", "--impute", "median", *QUICK], capsys)
    run_ok(["anomaly", "score", tmp_path / "uci.csv", "--model", model, "--out", tmp_path / "s.csv", "--quiet"], capsys)
    assert pd.read_csv(tmp_path / "s.csv").score.notna().all()
    assert main(["anomaly", "train", str(tmp_path / "uci.csv"), "--time-col", "Time", "--na-values", "?",
                 "--out", str(tmp_path / "ts")]) == 2
    assert "--na-values is not for time series" in capsys.readouterr().err


def test_scoring_streams_chunks_and_matches_in_memory_scores(card_csv, tmp_path, capsys):
    model = tmp_path / "m"
    out = run_ok(["anomaly", "train", card_csv, "--out", model, "--label-col", "Class", *QUICK], capsys)
    # a label without --normal-value: every row trained on, said with the values that would pick the normal ones
    assert "note: every row is trained on, whatever its 'Class' ('0' (" in out and "--normal-value VALUE" in out
    run_ok(["anomaly", "score", card_csv, "--model", model, "--out", tmp_path / "s.csv", "--label-col", "Class",
            "--chunk-rows", "37", "--quiet"], capsys)
    streamed = pd.read_csv(tmp_path / "s.csv")
    full = load_detector(model).decision_function(pd.read_csv(card_csv).drop(columns="Class"))
    assert len(streamed) == len(full) == 840
    # the chunked reader's floats can differ from pandas' in the last bit, and the local
    # term's product form (|z|^2 + |r|^2 - 2 z.r) magnifies that tenfold: 1e-6, not 1e-7
    np.testing.assert_allclose(streamed.score, full, rtol=1e-5)
    # the same scores as a Parquet file, one row group per chunk, that a later run may replace
    for _ in range(2):
        run_ok(["anomaly", "score", card_csv, "--model", model, "--out", tmp_path / "s.parquet", "--label-col",
                "Class", "--chunk-rows", "300", "--quiet"], capsys)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), streamed, check_dtype=False)
    assert marks.output_kind(tmp_path / "s.parquet") == marks.ANOMALY_SCORES
    user = tmp_path / "mine.parquet"
    pd.read_csv(card_csv).to_parquet(user)
    assert main(["anomaly", "score", str(card_csv), "--model", str(model), "--out", str(user)]) == 2
    assert "exists and aekit did not write it" in capsys.readouterr().err and marks.output_kind(user) is None
    # a .tsv or a gzipped .csv.gz / .tsv.gz: the same table, replaced by a later run, a user's file kept
    for name in ("s.tsv", "s.csv.gz", "s.tsv.gz", "s.csv.gz"):
        run_ok(["anomaly", "score", card_csv, "--model", model, "--out", tmp_path / name, "--label-col", "Class",
                "--chunk-rows", "300", "--quiet"], capsys)
        back = pd.read_csv(tmp_path / name, sep="\t" if ".tsv" in name else ",")
        pd.testing.assert_frame_equal(back, streamed)
        assert marks.output_kind(tmp_path / name) == marks.ANOMALY_SCORES
    pd.read_csv(card_csv).to_csv(user := tmp_path / "mine.csv.gz", index=False)
    assert main(["anomaly", "score", str(card_csv), "--model", str(model), "--out", str(user)]) == 2
    assert "exists and aekit did not write it" in capsys.readouterr().err and marks.output_kind(user) is None


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("m")
    make_card_rows(200, 0).to_csv(tmp / "train.csv", index=False)
    assert main(["anomaly", "train", str(tmp / "train.csv"), "--out", str(tmp / "model"), "--label-col", "Class",
                 *QUICK]) == 0
    return tmp


def test_score_reads_standard_input_and_writes_standard_output(small_model, tmp_path):
    """`zcat rows.csv.gz | aekit anomaly score - ... --out - | awk ...`: '-' was a file that
    does not exist. The scores on standard output are those of the file; what the command says
    goes to standard error."""
    import gzip

    rows = make_card_rows(300, 1).drop(columns="Class")
    rows.to_csv(tmp_path / "rows.csv", index=False)
    model = str(small_model / "model")
    assert main(["anomaly", "score", str(tmp_path / "rows.csv"), "--model", model, "--out",
                 str(tmp_path / "file.csv"), "--quiet"]) == 0
    expected = (tmp_path / "file.csv").read_bytes()
    command = [sys.executable, "-m", "aekit", "anomaly", "score", "-", "--model", model, "--out", "-"]
    for body in (rows.to_csv(index=False).encode(), gzip.compress(rows.to_csv(index=False).encode())):
        proc = subprocess.run(command, input=body, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == expected and f"scored {len(rows)} rows".encode() in proc.stderr and b"wrote standard output" in proc.stderr
    bad = subprocess.run(command, input=rows.assign(V2="x").to_csv(index=False).encode(), capture_output=True,
                         timeout=120)
    assert bad.returncode == 2 and not bad.stdout
    assert bad.stderr.decode().startswith("aekit: error: column 'V2'") and "aekit-stdin" not in bad.stderr.decode()
    empty = subprocess.run(command, input=b"", capture_output=True, timeout=120)
    assert empty.returncode == 2 and empty.stderr.decode().strip() == "aekit: error: stdin is empty"


def test_score_says_which_columns_lead_the_flagged_rows_and_when_the_data_looks_unlike_training(small_model,
                                                                                                  capsys):
    like = make_card_rows(500, 0).drop(columns="Class").iloc[200:]  # new rows of the training kind
    like.to_csv(small_model / "like.csv", index=False)
    like.assign(V1=like.V1 * 100).to_csv(small_model / "unit.csv", index=False)  # V1 in another unit
    out = run_ok(["anomaly", "score", small_model / "like.csv", "--model", small_model / "model", "--out",
                  small_model / "like_scores.csv"], capsys)
    flagged = int(out.split("flagged ")[1].split()[0])
    counts = [int(part.rsplit(" ", 1)[1].replace(",", ""))
              for part in out.split("leads their score: ")[1].splitlines()[0].split(", ")]
    assert flagged < 100 and sum(counts) <= flagged and "differ from the training data" not in out
    out = run_ok(["anomaly", "score", small_model / "unit.csv", "--model", small_model / "model", "--out",
                  small_model / "unit_scores.csv"], capsys)
    assert "flagged rows by the column that leads their score: V1 " in out
    assert "of the rows are flagged, where rows like the training ones are flagged 10% of the time: does this " \
           "data differ from the training data" in out
    out = run_ok(["anomaly", "report", small_model / "unit.csv", "--model", small_model / "model", "--report-dir",
                  small_model / "unit_report"], capsys)  # the report of unlabelled rows says the same
    assert "leads their score: V1 " in out and "differ from the training data" in out


def test_score_names_the_columns_the_model_does_not_read(small_model, capsys):
    """An ID left in the scored table without --id-col was dropped from the output unsaid."""
    rows = make_card_rows(40, 1)
    rows.insert(0, "txn", [f"t{i}" for i in range(len(rows))])
    rows.to_csv(small_model / "ids.csv", index=False)
    out = run_ok(["anomaly", "score", small_model / "ids.csv", "--model", small_model / "model", "--out",
                  small_model / "ids_scores.csv"], capsys)
    assert "note: column(s) ['txn', 'Class'] are not features of this model: not scored, not in the output " \
           "(--id-col NAME copies an ID column to the output)" in out
    out = run_ok(["anomaly", "score", small_model / "ids.csv", "--model", small_model / "model", "--out",
                  small_model / "ids_scores.csv", "--id-col", "txn", "--label-col", "Class"], capsys)
    assert "not features of this model" not in out
    assert pd.read_csv(small_model / "ids_scores.csv").txn.tolist() == rows.txn.tolist()


def test_threshold_is_set_anew_without_retraining(small_model, tmp_path, capsys):
    """`aekit anomaly threshold`: a trained model's threshold set from clean rows it never saw
    (fpr), or to a score, written in place or as a copy; the scores and the rest of the
    model stay as they were."""
    import json
    import shutil

    from aekit import AnomalyDetector

    model = tmp_path / "model"
    shutil.copytree(small_model / "model", model)
    clean = make_card_rows(400, 0, seed=3).drop(columns="Class")
    clean.to_csv(tmp_path / "clean.csv", index=False)
    before, config = AnomalyDetector.load(model), json.loads((model / "config.json").read_text())
    out = run_ok(["anomaly", "threshold", "--model", model, "--threshold", "fpr:0.05", "--clean",
                  tmp_path / "clean.csv"], capsys)
    after = AnomalyDetector.load(model)
    assert out.strip() == (f"threshold {before.threshold_:.4g} (contamination 0.1 of the training scores) -> "
                           f"{after.threshold_:.4g} (false-alarm rate 0.05 on the clean data given); model written "
                           f"to {model}")
    scores = after.decision_function(clean)
    np.testing.assert_array_equal(scores, before.decision_function(clean))
    assert after.threshold_ == pytest.approx(np.quantile(scores, 0.95, method="weibull"), rel=2e-5)
    assert json.loads((model / "config.json").read_text())["state"]["training"] == config["state"]["training"]
    run_ok(["anomaly", "threshold", "--model", model, "--threshold", "7.5", "--out", tmp_path / "copy"], capsys)
    assert AnomalyDetector.load(tmp_path / "copy").threshold_ == 7.5
    assert AnomalyDetector.load(model).threshold_ == after.threshold_  # the copy left the model as it was
    # a labelled file: only its normal rows are read
    labelled = pd.concat([make_card_rows(400, 0, seed=3), make_card_rows(0, 30, seed=4)])
    labelled.to_csv(tmp_path / "labelled.csv", index=False)
    run_ok(["anomaly", "threshold", "--model", model, "--threshold", "fpr:0.05", "--clean", tmp_path / "labelled.csv",
            "--label-col", "Class"], capsys)
    assert AnomalyDetector.load(model).threshold_ == pytest.approx(after.threshold_, rel=1e-9)
    for args, message in ((["fpr:0.05"], "an fpr:R threshold reads --clean"),
                          (["3", "--clean", tmp_path / "clean.csv"], "--clean (and its labels) are read by an fpr:R"),
                          (["fpr:0.05", "--clean", tmp_path / "labelled.csv", "--label-col", "Class",
                            "--normal-value", "ok"], "no row of "),
                          (["3", "--out", tmp_path], f"--out {tmp_path} holds the input")):
        assert main(["anomaly", "threshold", "--model", str(model), "--threshold", *map(str, args)]) == 2
        assert message in capsys.readouterr().err


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    good = pd.read_csv(tmp / "train.csv")
    (tmp / "empty.csv").write_text("")
    (tmp / "header.csv").write_text(",".join(good.columns) + "\n")
    good.drop(columns=["V3"]).to_csv(tmp / "missing.csv", index=False)
    good.assign(V5=np.where(np.arange(len(good)) == 2, np.nan, good.V5)).to_csv(tmp / "nan.csv", index=False)
    good.astype({"V7": object}).assign(V7=["twelve"] + good.V7.tolist()[1:]).to_csv(tmp / "text.csv", index=False)
    (tmp / "table.json").write_text("{}")
    good.iloc[:1].to_csv(tmp / "one.csv", index=False)
    good.assign(**{c: 1.0 for c in good.columns}).to_csv(tmp / "constant.csv", index=False)
    other = tmp / "other_model"
    other.mkdir(exist_ok=True)
    (other / "config.json").write_text(json.dumps({"format": "aekit-model", "format_version": 1, "kind": "cluster.X"}))
    m = str(tmp / "model")
    score = lambda data: ["anomaly", "score", str(tmp / data), "--model", m, "--out", str(tmp / "o.csv")]  # noqa: E731
    train = lambda data, *extra: ["anomaly", "train", str(tmp / data), "--out", str(tmp / "new"), *extra]  # noqa: E731
    return {
        "no such file": (score("nope.csv"), "does not exist"),
        "empty file": (score("empty.csv"), "is empty"),
        "header only": (score("header.csv"), "header but no data rows"),
        "missing column": (score("missing.csv"), "missing column(s) ['V3']"),
        "NaN": (score("nan.csv"), "NaN or inf in column(s) ['V5'] (the first in data row 3; an empty field, or a line "
                       "cut short?)"),
        "text in numbers": (score("text.csv"), "'V7' should be numeric but holds a non-number ('twelve', data row 1)"),
        "wrong file type": (score("table.json"), "unsupported file type '.json'"),
        "model of another kind": (["anomaly", "score", str(tmp / "train.csv"), "--model", str(other), "--out",
                                   str(tmp / "o.csv")], "holds a model of kind 'cluster.X'"),
        "not a model": (["anomaly", "score", str(tmp / "train.csv"), "--model", str(tmp), "--out", str(tmp / "o.csv")],
                        "not an aekit model directory"),
        "one row": (train("one.csv"), "at least 8 rows"),
        "zero variance": (train("constant.csv"), "every feature column is constant"),
        "bad threshold": (train("train.csv", "--threshold", "fpr:7"), "fpr must be in (0, 0.5]"),
        "unknown normal value": (train("train.csv", "--label-col", "Class", "--normal-value", "ok"),
                                 "no row has Class == 'ok'"),
        "unknown label column": (train("train.csv", "--label-col", "Klass"), "label column 'Klass' not found"),
    }


@pytest.mark.parametrize("case", [
    "no such file", "empty file", "header only", "missing column", "NaN", "text in numbers", "wrong file type",
    "model of another kind", "not a model", "one row", "zero variance", "bad threshold", "unknown normal value",
    "unknown label column"])
def test_user_errors_exit_2_with_one_line(case, small_model, capsys):
    argv, message = _bad_inputs(small_model)[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("aekit: error: ") and err.count("\n") == 1, err
    assert message in err, err
    assert not (small_model / "o.csv").exists()  # nothing half-written


def test_console_script_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "aekit", "anomaly", "score", str(tmp_path / "x.csv"), "--model",
                           str(tmp_path / "no_model"), "--out", str(tmp_path / "o.csv")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().endswith("does not exist")


def test_a_reader_that_stops_reading_is_not_an_error(small_model, monkeypatch, capsys):
    """`aekit ... | head -1`: the output closes early; the command's work is done and written,
    and it ends as a command killed by SIGPIPE would, without an error line."""
    class Closed:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Closed())
    out = small_model / "piped.csv"
    assert main(["anomaly", "score", str(small_model / "train.csv"), "--model", str(small_model / "model"),
                 "--out", str(out), "--quiet"]) == 141
    assert len(pd.read_csv(out)) == 200 and "error" not in capsys.readouterr().err


def _kill_resume_and_rerun(args: list[str], out: Path, first_checkpoint: Path, ref: Path) -> None:
    """Run ``args --out OUT``, SIGKILL it once its first checkpoint exists, finish it with
    ``--resume``, and train ``ref`` uninterrupted with the same arguments."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*args, "--out", str(out)], env=env)
    deadline = time.time() + 120
    while not first_checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first_checkpoint.exists() and not out.exists()
    subprocess.run([*args, "--out", str(out), "--resume"], env=env, check=True, capture_output=True)
    subprocess.run([*args, "--out", str(ref)], env=env, check=True, capture_output=True)


def test_killed_training_resumes_to_the_same_model(tmp_path):
    """SIGKILL `aekit anomaly train` after its first checkpoint; `--resume` must finish it and
    give exactly the model an uninterrupted run gives."""
    make_card_rows(12_000, 0).to_csv(tmp_path / "big.csv", index=False)
    args = [sys.executable, "-m", "aekit", "anomaly", "train", str(tmp_path / "big.csv"), "--label-col", "Class",
            "--n-estimators", "1", "--epochs", "25", "--quiet"]
    _kill_resume_and_rerun(args, tmp_path / "m", tmp_path / "m.ckpt" / "member0" / "checkpoint.safetensors",
                           tmp_path / "ref")
    X = pd.read_csv(tmp_path / "big.csv").drop(columns="Class").iloc[:500]
    np.testing.assert_array_equal(load_detector(tmp_path / "m").decision_function(X),
                                  load_detector(tmp_path / "ref").decision_function(X))


def test_killed_vq_training_resumes_to_the_same_model(tmp_path):
    """The same for another family of estimators (a codes verb, with its per-epoch health)."""
    from safetensors.torch import load_file

    args = [sys.executable, "-m", "aekit", "vq", "train", "digits", "--codebook-size", "16", "--epochs", "6",
            "--quiet"]
    _kill_resume_and_rerun(args, tmp_path / "v", tmp_path / "v.ckpt" / "autoencoder" / "checkpoint.safetensors",
                           tmp_path / "ref")
    a, b = load_file(str(tmp_path / "v" / "model.safetensors")), load_file(str(tmp_path / "ref" / "model.safetensors"))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)


def test_demo_prints_metrics_and_writes_the_report(tmp_path, capsys):
    out = run_ok(["anomaly", "demo", "--out", tmp_path, "--quiet"], capsys)
    for needle in ("AUC-ROC", "AUC-PR", "threshold", "confusion matrix"):
        assert needle in out
    assert float(out.split("AUC-ROC")[1].split()[0]) > 0.9
    assert {p.name for p in (tmp_path / "report").glob("*.png")} == {
        "scores_histogram.png", "roc_curve.png", "top_anomalies_contributions.png", "training_curves.png"}
    assert load_detector(tmp_path / "model").threshold_rule_.method == "fpr"


def test_image_folder_train_and_score_with_heat_maps(tmp_path, capsys):
    from PIL import Image

    from aekit.data.images import load_images

    digits = load_images("digits")
    for digit, name, count in ((0, "zero", 100), (1, "one", 6)):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i, img in enumerate(digits.images[digits.labels == digit][:count]):
            Image.fromarray((img[0] * 255).astype(np.uint8)).save(tmp_path / "imgs" / name / f"{i}.png")
    out = run_ok(["anomaly", "train", tmp_path / "imgs", "--out", tmp_path / "m", "--normal-value", "zero",
                  "--threshold", "fpr:0.05", "--n-estimators", "1", "--epochs", "25", "--quiet"], capsys)
    assert "trained on 100 images of 1x8x8" in out
    out = run_ok(["anomaly", "score", tmp_path / "imgs", "--model", tmp_path / "m", "--out", tmp_path / "s.csv"],
                 capsys)
    scores = pd.read_csv(tmp_path / "s.csv")
    assert list(scores.columns) == ["image", "score", "is_anomaly", "class"] and len(scores) == 106
    assert scores[scores["class"] == "one"].is_anomaly.mean() > 0.8
    assert (tmp_path / "s_heatmaps" / "_overview.png").is_file() and "_overview.png" in out
    maps = sorted(p for p in (tmp_path / "s_heatmaps").glob("*.png") if p.name != "_overview.png")
    assert len(maps) == min(20, scores.is_anomaly.sum()) and any(p.name.startswith("one__") for p in maps)
    panel = np.asarray(Image.open(maps[0]))
    assert panel.ndim == 3 and panel.shape[0] >= 112 and panel.std() > 0  # enlarged, and not blank
    top = scores.sort_values("score", ascending=False).image.head(len(maps))
    assert sorted(p.name for p in maps) == sorted(n.replace("/", "__").rsplit(".", 1)[0] + ".png" for n in top)
    # streamed in chunks of 7 (a pool of threads decoding ahead): the same rows and top images as one chunk
    run_ok(["anomaly", "score", tmp_path / "imgs", "--model", tmp_path / "m", "--out", tmp_path / "s7.csv",
            "--chunk-rows", "7", "--heatmap-dir", tmp_path / "maps7"], capsys)
    chunked = pd.read_csv(tmp_path / "s7.csv")
    assert chunked.drop(columns="score").equals(scores.drop(columns="score"))
    np.testing.assert_allclose(chunked.score, scores.score, rtol=1e-5)
    assert sorted(p.name for p in (tmp_path / "maps7").glob("*.png")) == sorted([p.name for p in maps] + [OVERVIEW])
    out = run_ok(["anomaly", "score", tmp_path / "imgs", "--model", tmp_path / "m", "--out", tmp_path / "s0.csv",
                  "--heatmaps", "0"], capsys)
    assert "heat maps" not in out and not (tmp_path / "s0_heatmaps").exists()
    out = run_ok(["anomaly", "score", tmp_path / "imgs", "--model", tmp_path / "m", "--out", tmp_path / "g.csv.gz",
                  "--heatmaps", "1"], capsys)
    assert (tmp_path / "g_heatmaps" / "_overview.png").is_file()  # named as g.csv's would be
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "g.csv.gz"), scores)
    assert main(["anomaly", "train", str(tmp_path / "imgs"), "--out", str(tmp_path / "x"), "--normal-value",
                 "two"]) == 2
    assert "not a class" in capsys.readouterr().err
    # eval: the class folders are the labels, "zero" the normal one
    out = run_ok(["anomaly", "eval", tmp_path / "imgs", "--model", tmp_path / "m", "--normal-value", "zero",
                  "--report-dir", tmp_path / "rep"], capsys)
    assert float(out.split("AUC-ROC")[1].split()[0]) > 0.9 and "true anomalies 6" in out
    assert "by label value: images" in out and "zero" in out.split("by label value")[1]
    assert {p.name for p in (tmp_path / "rep").iterdir()} >= {
        "scores_histogram.png", "roc_curve.png", "metrics.json", "top_anomalies.png", "missed_anomalies.png",
        "false_alarms.png"}
    found = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert found["classes"]["zero"] == {"normal": True, "images": 100, "auc_roc": None,
                                        "flagged": pytest.approx((scores[scores["class"] == "zero"].is_anomaly).mean())}
    assert found["classes"]["one"]["images"] == 6 and found["classes"]["one"]["auc_roc"] == pytest.approx(found["auc_roc"])
    out = run_ok(["anomaly", "report", tmp_path / "imgs" / "one", "--model", tmp_path / "m", "--report-dir",
                  tmp_path / "rep1"], capsys)  # no classes: no labels, the scores and the top gallery
    assert "scored 6 images" in out
    assert {p.name for p in (tmp_path / "rep1").glob("*.png")} == {"scores_histogram.png", "top_anomalies.png"}
    assert not (tmp_path / "rep1" / "metrics.json").exists()
    out = run_ok(["anomaly", "report", tmp_path / "imgs", "--model", tmp_path / "m", "--report-dir",
                  tmp_path / "rep1"], capsys)  # classes, but no normal one named: a report without labels
    assert "scored 106 images" in out and not (tmp_path / "rep1" / "roc_curve.png").exists()
    np.savez(tmp_path / "digits.npz", images=(digits.images[:300, 0] * 255).astype(np.uint8), labels=digits.labels[:300])
    out = run_ok(["anomaly", "eval", tmp_path / "digits.npz", "--model", tmp_path / "m", "--normal-value", "0",
                  "--report-dir", tmp_path / "rep3"], capsys)  # an .npz's labels are its classes
    assert float(out.split("AUC-ROC")[1].split()[0]) > 0.9
    by_class = json.loads((tmp_path / "rep3" / "metrics.json").read_text())["classes"]
    assert sorted(by_class) == [str(d) for d in range(10)] and by_class["0"]["normal"] and by_class["1"]["auc_roc"] > 0.9
    for argv, words in ((["--label-col", "y"], "--label-col is for tables"),
                        ([], "labels are not 0/1"),  # classes, but no normal one named
                        (["--normal-value", "zero", "--report-dir", str(tmp_path / "rep2"), "--id-col", "i"],
                         "--id-col is for tables")):
        assert main(["anomaly", "eval", str(tmp_path / "imgs"), "--model", str(tmp_path / "m"), *argv]) == 2
        assert words in capsys.readouterr().err
    assert main(["anomaly", "eval", str(tmp_path / "imgs" / "one"), "--model", str(tmp_path / "m")]) == 2
    assert "eval needs the images in class folders" in capsys.readouterr().err


def test_train_without_training_flags_uses_the_detector_defaults(card_csv, tmp_path, capsys):
    model = tmp_path / "m"
    run_ok(["anomaly", "train", card_csv, "--out", model, "--label-col", "Class", "--quiet"], capsys)
    det = load_detector(model)
    defaults = AnomalyDetector().get_params()
    assert (det.n_estimators, det.epochs) == (defaults["n_estimators"], defaults["epochs"])
    assert len(det.models_) == defaults["n_estimators"] and det.local_weight_ > 0
