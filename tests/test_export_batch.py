"""ONNX export (parity with aekit through onnxruntime) and scoring past one process (Dask on
a two-worker LocalCluster, the Spark mapInPandas function): the same results as
``aekit anomaly score``."""
from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from aekit.apps.anomaly import AnomalyDetector, ImageAnomalyDetector, VAEAnomalyDetector
from aekit.apps.anomaly.batch import read_as_numbers, read_dask_table, score_dask, spark_scorer
from aekit.apps.anomaly.export import export_onnx, onnx_metadata
from aekit.apps.anomaly.jobs import score_file
from aekit.cli import main
from aekit.errors import DataError, OutputError

from .conftest import make_kdd_rows

ort = pytest.importorskip("onnxruntime")
SMALL = dict(n_estimators=2, epochs=10, batch_size=64, verbose=0)


def run_onnx(path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(session.run(None, {session.get_inputs()[0].name: x}))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, cancer_split):
    X_train, _, _ = cancer_split
    path = tmp_path_factory.mktemp("export") / "model"
    AnomalyDetector(**SMALL, log_columns=["mean area", "worst area"]).fit(X_train).save(path)
    return path


def test_onnx_scores_match_aekit(model_dir, cancer_split, tmp_path):
    _, X_test, _ = cancer_split
    assert main(["anomaly", "export", "--model", str(model_dir), "--out", str(tmp_path / "m.onnx")]) == 0
    det = AnomalyDetector.load(model_dir)
    meta = onnx_metadata(tmp_path / "m.onnx")
    assert json.loads(meta["columns"]) == list(X_test.columns) and float(meta["threshold"]) == det.threshold_
    scores, flags = run_onnx(tmp_path / "m.onnx", X_test.to_numpy(np.float32))
    expected = det.decision_function(X_test)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert (flags == (expected > det.threshold_)).all()
    one, _ = run_onnx(tmp_path / "m.onnx", X_test.to_numpy(np.float32)[:1])  # any number of rows
    np.testing.assert_allclose(one, expected[:1], rtol=1e-5)
    bad = X_test.to_numpy(np.float32)[:3].copy()
    bad[1, 4] = np.inf
    assert np.isnan(run_onnx(tmp_path / "m.onnx", bad)[0][1])  # aekit refuses the row; the graph says NaN


def test_onnx_scores_match_aekit_when_the_local_term_searches_cells(tmp_path):
    """A table large enough for the local term's cells: the graph gathers each row's probed
    cells where aekit sorts rows by cell; the scores agree, for rows near and far from the data."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(2600, 4)) @ rng.normal(size=(4, 6))).astype(np.float32)
    det = AnomalyDetector(epochs=2, verbose=0).fit(X[:2400])
    assert det.local_centres_ is not None and len(det.local_centres_) > det.local_probes_
    det.save(tmp_path / "m")
    export_onnx(tmp_path / "m", tmp_path / "m.onnx")
    test = np.vstack([X[2400:], X[2400:2450] * 4 + 3])
    scores, _ = run_onnx(tmp_path / "m.onnx", test)
    np.testing.assert_allclose(scores, det.decision_function(test), rtol=1e-4)


def test_onnx_vae_with_imputation_and_images(cancer_split, tmp_path):
    X_train, X_test, _ = cancer_split
    vae = VAEAnomalyDetector(**SMALL, impute="median").fit(X_train)
    vae.save(tmp_path / "vae")
    export_onnx(tmp_path / "vae", tmp_path / "vae.onnx")
    holes = X_test.head(20).copy()
    holes.iloc[3, 5] = np.nan
    np.testing.assert_allclose(run_onnx(tmp_path / "vae.onnx", holes.to_numpy(np.float32))[0],
                               vae.decision_function(holes), rtol=1e-5)

    images = np.random.default_rng(0).random((40, 1, 8, 8)).astype(np.float32)
    ImageAnomalyDetector(n_estimators=1, epochs=2, verbose=0).fit(images).save(tmp_path / "img")
    export_onnx(tmp_path / "img", tmp_path / "img.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "img.onnx", images[:7])[0],
                               ImageAnomalyDetector.load(tmp_path / "img").decision_function(images[:7]), rtol=1e-5)


def test_onnx_takes_categorical_columns_as_strings_and_refuses_unsafe_outputs(tmp_path, model_dir):
    """KDD's protocol, service and flag columns: a second input of strings, looked up in the
    graph; a value never seen in training is all zeros, as in aekit."""
    rows = make_kdd_rows(300, 0).drop(columns="label")
    det = AnomalyDetector(**SMALL).fit(rows.iloc[:200])
    det.save(tmp_path / "kdd")
    export_onnx(tmp_path / "kdd", tmp_path / "kdd.onnx")
    meta = onnx_metadata(tmp_path / "kdd.onnx")
    categorical = json.loads(meta["categorical_columns"])
    assert categorical == ["protocol_type", "service", "flag"] and "categories: string [rows, 3]" in meta["input"]
    new = rows.iloc[200:].copy()
    new.iloc[:5, new.columns.get_loc("service")] = "never_seen"
    session = ort.InferenceSession(str(tmp_path / "kdd.onnx"), providers=["CPUExecutionProvider"])
    scores, flags = session.run(None, {"x": new[json.loads(meta["columns"])].to_numpy(np.float32),
                                       "categories": new[categorical].astype(str).to_numpy(object)})
    expected = det.decision_function(new)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert (flags == (expected > det.threshold_)).all()
    text_only = AnomalyDetector(**SMALL).fit(rows[["protocol_type", "service"]].iloc[:200])
    text_only.save(tmp_path / "text_only")  # no numeric column: the strings are the only input
    meta = export_onnx(tmp_path / "text_only", tmp_path / "t.onnx")
    assert meta["input"] == "categories: string [rows, 2] (categorical_columns, as text)" and meta["columns"] == "[]"
    session = ort.InferenceSession(str(tmp_path / "t.onnx"), providers=["CPUExecutionProvider"])
    scores, _ = session.run(None, {"categories": new[["protocol_type", "service"]].astype(str).to_numpy(object)})
    np.testing.assert_allclose(scores, text_only.decision_function(new[["protocol_type", "service"]]), rtol=1e-5)
    with pytest.raises(OutputError, match="must end with .onnx"):
        export_onnx(model_dir, tmp_path / "m.csv")


def test_onnx_reads_a_number_category_as_1_and_as_1_0(tmp_path):
    """A number column named categorical: aekit keeps 2.0 as "2"; the graph takes "2" and "2.0"."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"a": rng.normal(size=240), "level": rng.integers(1, 4, 240).astype(float)})
    det = AnomalyDetector(**SMALL, categorical=["level"]).fit(rows.iloc[:200])
    det.save(tmp_path / "m")
    export_onnx(tmp_path / "m", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    new = rows.iloc[200:]
    x = new[["a"]].to_numpy(np.float32)
    as_floats = session.run(None, {"x": x, "categories": new[["level"]].astype(str).to_numpy(object)})[0]
    as_whole = session.run(None, {"x": x, "categories": new[["level"]].astype(int).astype(str).to_numpy(object)})[0]
    assert det.preprocessor_.categories_ == {"level": ["1", "2", "3"]}
    np.testing.assert_allclose(as_floats, det.decision_function(new), rtol=1e-5)
    np.testing.assert_array_equal(as_floats, as_whole)


def test_a_true_false_column_reads_a_booleans_other_spellings_in_python_and_in_the_graph(tmp_path):
    """Trained on True/False (a CSV's, or a DataFrame's bools), scored with 1/0, t/f or yes/no
    (a database's or a form's): every value was an unseen category, every row flagged."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"a": rng.normal(size=240), "flag": rng.random(240) < 0.3})
    det = AnomalyDetector(**SMALL).fit(rows.iloc[:200])
    assert det.preprocessor_.categories_ == {"flag": ["False", "True"]}
    det.save(tmp_path / "m")
    export_onnx(tmp_path / "m", tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    new = rows.iloc[200:]
    expected = det.decision_function(new)
    x = new[["a"]].to_numpy(np.float32)
    for spelled in ({True: 1, False: 0}, {True: 1.0, False: 0.0}, {True: "t", False: "f"}, {True: "yes", False: "no"},
                    {True: "TRUE", False: "FALSE"}):
        written = new.assign(flag=new.flag.map(spelled))
        np.testing.assert_array_equal(det.decision_function(written), expected)
        assert det.preprocessor_.unseen_counts_ == {}
        graph = session.run(None, {"x": x, "categories": written[["flag"]].astype(str).to_numpy(object)})[0]
        np.testing.assert_allclose(graph, expected, rtol=1e-5)
    det.decision_function(new.assign(flag="maybe"))
    assert det.preprocessor_.unseen_counts_ == {"flag": 40}  # other text is still unseen


def test_onnx_reads_every_other_value_of_a_pooled_column_as_its_other_category(tmp_path):
    """A column of more than MAX_CATEGORIES categories: the graph's lookup sends values
    outside the kept ones to "(other)", as the preprocessor does; a model's missing-value
    markers (``na_values``) are missing there too, not "(other)"."""
    rng = np.random.default_rng(1)
    rows = pd.DataFrame({"a": rng.normal(size=1600), "shop": [f"s{v}" for v in rng.integers(0, 400, 1600)]})

    def graph_and_python(det: AnomalyDetector, other: str) -> tuple[np.ndarray, np.ndarray]:
        """The exported graph's scores and the detector's for the held-out rows, every other shop ``other``."""
        model = tmp_path / f"m{len(list(tmp_path.iterdir()))}"
        det.save(model)
        export_onnx(model, model.with_suffix(".onnx"))
        session = ort.InferenceSession(str(model.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
        new = rows.iloc[1500:].assign(shop=lambda f: np.where(np.arange(len(f)) % 2, f.shop, other))
        inputs = {"x": new[["a"]].to_numpy(np.float32), "categories": new[["shop"]].to_numpy(object)}
        return session.run(None, inputs)[0], det.decision_function(new)

    det = AnomalyDetector(**SMALL).fit(rows.iloc[:1500])
    assert det.preprocessor_.pooled_ == ["shop"]
    # 257 features: the local term's product-form distances round differently, to 3.5e-5 here
    np.testing.assert_allclose(*graph_and_python(det, "never-seen"), rtol=1e-4)
    new = rows.iloc[1500:]
    as_unseen = det.decision_function(new.assign(shop="another never-seen"))
    np.testing.assert_allclose(as_unseen, det.decision_function(new.assign(shop="never-seen")))
    np.testing.assert_allclose(*graph_and_python(AnomalyDetector(**SMALL, na_values=["?"]).fit(rows.iloc[:1500]), "?"),
                               rtol=1e-4)


@pytest.fixture(scope="module")
def table_files(tmp_path_factory, cancer):
    X, y = cancer
    folder = tmp_path_factory.mktemp("tables")
    df = X.assign(id=np.arange(len(X)) * 7, label=y)
    for part in range(3):  # a glob of several files: several partitions
        df.iloc[part::3].to_csv(folder / f"part{part}.csv", index=False)
    df.to_parquet(folder / "all.parquet")
    return folder


def test_dask_on_two_workers_matches_local_scoring(model_dir, table_files, tmp_path):
    local = []
    for part in range(3):
        score_file(table_files / f"part{part}.csv", model_dir, tmp_path / f"local{part}.csv", id_col="id",
                   label_col="label", verbose=0)
        local.append(pd.read_csv(tmp_path / f"local{part}.csv"))
    expected = pd.concat(local, ignore_index=True)
    summary = score_dask(str(table_files / "part*.csv"), model_dir, tmp_path / "dask.csv", workers=2, id_col="id",
                         label_col="label")
    got = pd.read_csv(tmp_path / "dask.csv")
    pd.testing.assert_frame_equal(got, expected)  # identical: scores, flags, top features, order
    assert summary.rows == len(expected) and summary.flagged == expected["is_anomaly"].sum()
    leading = expected.loc[expected.is_anomaly == 1, "top_features"].str.split(" (", regex=False).str[0].value_counts()
    assert summary.leaders == leading.to_dict() and sum(summary.leaders.values()) == summary.flagged
    assert list(summary.leaders.values()) == sorted(summary.leaders.values(), reverse=True)
    assert summary.notices == []  # every column read: the features, the ID and the label

    assert main(["anomaly", "score", str(table_files / "all.parquet"), "--model", str(model_dir), "--out",
                 str(tmp_path / "dask.parquet"), "--engine", "dask", "--id-col", "id", "--quiet"]) == 0
    from_parquet = pd.read_parquet(tmp_path / "dask.parquet").set_index("id").sort_index()
    # one partition instead of three: the local term's product-form distances may round
    # differently in the last bit when a row's block holds other rows
    np.testing.assert_allclose(from_parquet["score"], expected.set_index("id").sort_index()["score"], rtol=1e-6)
    # a second run replaces its own output folder; any other folder is refused
    again = score_dask(str(table_files / "all.parquet"), model_dir, tmp_path / "dask.parquet", workers=1)
    assert again.notices == ["column(s) ['id', 'label'] are not features of this model: not scored, not in the "
                             "output (--id-col NAME copies an ID column to the output)"]
    with pytest.raises(DataError, match="--heatmap-dir is for image models, not a table model"):
        score_dask(str(table_files / "all.parquet"), model_dir, tmp_path / "x.csv", heatmap_dir=tmp_path / "maps")
    (tmp_path / "mine.parquet").mkdir()
    (tmp_path / "mine.parquet" / "part.0.parquet").write_bytes(b"mine")
    with pytest.raises(OutputError, match="aekit did not make"):
        score_dask(str(table_files / "all.parquet"), model_dir, tmp_path / "mine.parquet", workers=1)
    # a folder of parts as the local reader reads one (.pq parts too); key=value folders refused alike
    (tmp_path / "parts").mkdir()
    for part in range(3):
        pd.read_csv(table_files / f"part{part}.csv").to_parquet(tmp_path / "parts" / f"part-{part}.pq")
    folder = score_dask(str(tmp_path / "parts"), model_dir, tmp_path / "folder.csv", workers=1, id_col="id")
    assert folder.rows == len(expected)
    # compressed CSV and TSV files, each read whole by one task
    for part in range(3):
        pd.read_csv(table_files / f"part{part}.csv").to_csv(tmp_path / f"zip{part}.csv.bz2", index=False)
    zipped = score_dask(str(tmp_path / "zip*.csv.bz2"), model_dir, tmp_path / "zipped.csv", workers=1, id_col="id",
                        label_col="label")
    assert zipped.rows == len(expected)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "zipped.csv"), expected)
    from aekit.apps.anomaly.batch import read_dask_table

    expected.to_csv(tmp_path / "t.tsv.xz", sep="\t", index=False)
    pd.testing.assert_frame_equal(read_dask_table(str(tmp_path / "t.tsv.xz")).compute(), expected, check_dtype=False)
    (tmp_path / "rows.json").write_text("{}")
    with pytest.raises(DataError, match=r"reads \.csv, \.tsv \(either may end \.gz, \.bz2 or \.xz\) or \.parquet"):
        read_dask_table(str(tmp_path / "rows.json"))
    (tmp_path / "hive" / "day=1").mkdir(parents=True)
    pd.read_csv(table_files / "part0.csv").to_parquet(tmp_path / "hive" / "day=1" / "part.parquet")
    with pytest.raises(DataError, match="partitioned into folders"):
        score_dask(str(tmp_path / "hive"), model_dir, tmp_path / "hive.csv", workers=1)


def test_dask_scores_an_image_folder_as_the_command_does(tmp_path, monkeypatch):
    from PIL import Image

    import aekit.apps.anomaly.batch as batch

    rng = np.random.default_rng(0)
    for folder, n in (("good", 30), ("bad", 9)):
        (tmp_path / "images" / folder).mkdir(parents=True)
        for i in range(n):
            image = rng.integers(0, 60, (16, 16), dtype=np.uint8)
            image[4:12, 4:12] = 200 if folder == "good" else 20
            Image.fromarray(image).save(tmp_path / "images" / folder / f"{i:02d}.png")
    ImageAnomalyDetector(n_estimators=1, epochs=2, verbose=0).fit(str(tmp_path / "images" / "good")
                                                                   ).save(tmp_path / "img")
    local_summary = score_file(tmp_path / "images", tmp_path / "img", tmp_path / "local.csv", heatmaps=4, verbose=0)
    monkeypatch.setattr(batch, "IMAGE_PARTITION", 16)  # three tasks
    summary = score_dask(str(tmp_path / "images"), tmp_path / "img", tmp_path / "dask.csv", workers=1, heatmaps=4)
    local, got = pd.read_csv(tmp_path / "local.csv"), pd.read_csv(tmp_path / "dask.csv")
    assert list(got.columns) == list(local.columns) == ["image", "score", "is_anomaly", "class"]
    assert got.image.tolist() == local.image.tolist() and (got["class"] == local["class"]).all()
    np.testing.assert_allclose(got.score, local.score, rtol=1e-4)  # torch on the workers, ONNX Runtime here
    assert (summary.rows, summary.flagged, summary.unit) == (39, int(local.is_anomaly.sum()), "images")
    # the heat maps: the same images drawn as the local command draws them (its maps from ONNX Runtime)
    assert summary.heatmaps == local_summary.heatmaps == 4 and summary.heatmap_dir == str(tmp_path / "dask_heatmaps")
    drawn = sorted(p.name for p in (tmp_path / "dask_heatmaps").glob("*.png"))
    assert drawn == sorted(p.name for p in (tmp_path / "local_heatmaps").glob("*.png")) and "_overview.png" in drawn
    assert all(name.startswith("bad__") for name in drawn if name != "_overview.png")
    for name in drawn:
        ours, theirs = (np.asarray(Image.open(tmp_path / f"{kind}_heatmaps" / name), dtype=int) for kind in ("dask", "local"))
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() <= 2
    with pytest.raises(DataError, match="--label-col is for tables"):
        score_dask(str(tmp_path / "images"), tmp_path / "img", tmp_path / "x.csv", label_col="class")
    # an unreadable file left out and named, as the local command does; the rest scored alike
    (tmp_path / "images" / "bad" / "03a.png").write_bytes(b"")
    skipped = score_dask(str(tmp_path / "images"), tmp_path / "img", tmp_path / "skip.csv", workers=1, heatmaps=0,
                         skip_unreadable=True)
    assert skipped.notices == ["1 image not scored, cannot be decoded as an image (an empty file): bad/03a.png"]
    got = pd.read_csv(tmp_path / "skip.csv")
    assert skipped.rows == len(got) == 39 and got.image.tolist() == local.image.tolist()
    np.testing.assert_allclose(got.score, local.score, rtol=1e-4)
    (tmp_path / "images" / "bad" / "03a.png").unlink()
    # Spark: mapInPandas over spark.read.format("binaryFile") batches (path, content)
    from aekit.apps.anomaly.batch import spark_image_scorer

    paths = sorted((tmp_path / "images").rglob("*.png"))
    batches = [pd.DataFrame({"path": [f"file:{p}" for p in chunk], "content": [p.read_bytes() for p in chunk]})
               for chunk in (paths[:20], paths[20:])]
    by_spark = pd.concat(list(spark_image_scorer(tmp_path / "img")(iter(batches))), ignore_index=True)
    assert list(by_spark.columns) == ["path", "score", "is_anomaly"] and len(by_spark) == len(local)
    np.testing.assert_allclose(by_spark.score, local.score, rtol=1e-4)  # the same sorted files
    with pytest.raises(DataError, match="need columns 'path' and 'content'"):
        list(spark_image_scorer(tmp_path / "img")(iter([pd.DataFrame({"path": ["a.png"]})])))
    with pytest.raises(DataError, match="holds no images"):
        score_dask(str(tmp_path / "img"), tmp_path / "img", tmp_path / "x.csv")


def test_dask_failures_are_one_line_on_stderr(model_dir, table_files, tmp_path, capfd):
    """As a user sees it: the workers are other processes writing to the same terminal (capfd
    reads the file descriptor they inherit), yet an error inside a partition is one line; and
    a scheduler nobody answers at is one line within seconds."""
    import socket
    import time

    X = pd.read_csv(table_files / "part0.csv").drop(columns=["id", "label"])
    X.iloc[5, 2] = np.nan
    X.to_csv(tmp_path / "nan.csv", index=False)
    # past Dask's first block (256 kB, where it guesses each column's type), an empty field:
    # in one of the model's number columns, of whole numbers (read as numbers now, it reaches
    # the model's own NaN check), and in an integer label column (named in one line); both
    # were Dask's traceback
    late = pd.concat([pd.read_csv(table_files / "part0.csv")] * 15, ignore_index=True)
    late[late.columns[0]] = late[late.columns[0]].round().astype(int)
    late.astype({late.columns[0]: object}).assign(**{late.columns[0]: lambda d: d.iloc[:, 0].where(
        d.index < len(d) - 3, "")}).to_csv(tmp_path / "late_nan.csv", index=False)
    late.astype({"label": object}).assign(label=lambda d: d.label.where(d.index < len(d) - 3, "")).to_csv(
        tmp_path / "late_label.csv", index=False)
    assert (tmp_path / "late_nan.csv").stat().st_size > 256_000 * 2
    with socket.socket() as s:  # a port with nobody behind it
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    for data, extra, message in ((tmp_path / "nan.csv", ["--workers", "1"], "NaN or inf"),
                                 (tmp_path / "late_nan.csv", ["--workers", "1"],  # rows counted in a partition
                                  "of a partition (--engine local names the file's row)"),
                                 (tmp_path / "late_label.csv", ["--workers", "1", "--label-col", "label"],
                                  "'label' reads as float64 where the first block read as int64"),
                                 (table_files / "part0.csv", ["--scheduler", f"tcp://127.0.0.1:{free}"],
                                  "cannot reach the Dask scheduler")):
        start = time.monotonic()
        code = main(["anomaly", "score", str(data), "--model", str(model_dir), "--engine", "dask", "--out",
                     str(tmp_path / "o.csv"), "--quiet", *extra])
        err = capfd.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err
        assert time.monotonic() - start < 60
    assert not (tmp_path / "o.csv").exists()


def test_dask_reads_a_number_category_with_a_late_gap_as_numbers(tmp_path):
    """A categorical column of whole numbers with an empty field past Dask's first block: read
    as floats (1.0 is category "1"), it scores as the local engine does, where it stopped the run."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"a": rng.normal(size=30_000), "level": rng.integers(1, 4, 30_000).astype(object)})
    det = AnomalyDetector(**SMALL, categorical=["level", "kind"]).fit(
        rows.iloc[:300].assign(kind=rng.choice(["x", "y"], 300)))
    assert read_as_numbers(det.preprocessor_) == ["a", "level"]  # "kind" is text
    rows.loc[len(rows) - 3, "level"] = ""
    rows.assign(kind="x").to_csv(tmp_path / "late.csv", index=False)
    frame = read_dask_table(str(tmp_path / "late.csv"), read_as_numbers(det.preprocessor_)).compute()
    scores = det.decision_function(frame)
    assert np.isfinite(scores).all() and det.preprocessor_.unseen_counts_ == {}
    np.testing.assert_allclose(scores, det.decision_function(pd.read_csv(tmp_path / "late.csv")), rtol=1e-5)
    # unseen categories in two files: counted, with examples, as the local engine counts them
    det.save(tmp_path / "m")
    for part, kinds in enumerate((["x", "z", "x", "q"], ["w", "z", "y", "x"])):
        rows.iloc[part * 50:(part + 1) * 50].assign(kind=kinds * 12 + ["x", "x"]).to_csv(
            tmp_path / f"p{part}.csv", index=False)
    summary = score_dask(str(tmp_path / "p*.csv"), tmp_path / "m", tmp_path / "s.csv", workers=1)
    assert summary.unseen_categories == {"kind": 48} and summary.unseen_examples == {"kind": ["z", "q", "w"]}
    assert summary.known_categories == {"kind": ["x", "y"]}
    pd.concat([pd.read_csv(tmp_path / f"p{part}.csv") for part in range(2)]).to_csv(tmp_path / "both.csv", index=False)
    local = score_file(tmp_path / "both.csv", tmp_path / "m", tmp_path / "local.csv", verbose=0)
    assert (local.unseen_categories, local.unseen_examples) == (summary.unseen_categories, summary.unseen_examples)


def test_spark_function_scores_batches_like_local(model_dir, table_files, tmp_path):
    score_file(table_files / "part0.csv", model_dir, tmp_path / "local.csv", id_col="id", verbose=0)
    expected = pd.read_csv(tmp_path / "local.csv")
    rows = pd.read_csv(table_files / "part0.csv").drop(columns="label")
    shutil.copytree(model_dir, tmp_path / "copy")
    scorer = spark_scorer(tmp_path / "copy", id_col="id")
    shutil.rmtree(tmp_path / "copy")  # the function carries the model: executors need no folder
    got = pd.concat(scorer(iter([rows.iloc[:50], rows.iloc[50:]])), ignore_index=True)
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.slow
def test_spark_map_in_pandas(model_dir, table_files, tmp_path, monkeypatch):
    """The documented recipe on a local Spark (needs pyspark and a Java runtime:
    ``apt-get install default-jre-headless``, ``pip install pyspark``)."""
    pyspark = pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # executors need aekit installed: this interpreter has it
    score_file(table_files / "part0.csv", model_dir, tmp_path / "local.csv", id_col="id", verbose=0)
    expected = pd.read_csv(tmp_path / "local.csv")
    spark = (pyspark.sql.SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:
        df = spark.read.csv(str(table_files / "part0.csv"), header=True, inferSchema=True).drop("label")
        scored = df.mapInPandas(spark_scorer(model_dir, id_col="id"),
                                schema="id long, score double, is_anomaly long, top_features string")
        got = scored.toPandas().sort_values("id").reset_index(drop=True)
    finally:
        spark.stop()
    pd.testing.assert_frame_equal(got, expected.sort_values("id").reset_index(drop=True), check_dtype=False)
