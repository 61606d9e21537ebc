"""Every verb against a careless user: each bad input gives one line on stderr starting
``aekit: error:``, exit code 2, no traceback, and leaves every file as it was."""
from __future__ import annotations

import gzip
import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aekit.cli import main
from aekit.data.audio import write_wav
from aekit.data.images import load_bundled
from aekit.io import claim_output_dir

from .conftest import make_card_rows

Q = ["--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace: small tables, an image folder, and one trained model of each kind."""
    w = tmp_path_factory.mktemp("ws")
    good = make_card_rows(120, 0)
    good.to_csv(w / "train.csv", index=False)
    (w / "empty.csv").write_text("")
    (w / "header.csv").write_text(",".join(good.columns) + "\n")
    (w / "table.json").write_text("{}")
    good.iloc[:3].to_csv(w / "three.csv", index=False)
    good.assign(**{c: 1.0 for c in good.columns}).to_csv(w / "constant.csv", index=False)
    good.drop(columns=["V3"]).to_csv(w / "missing.csv", index=False)
    good.assign(V5=np.where(np.arange(len(good)) == 2, np.nan, good.V5)).to_csv(w / "nan.csv", index=False)
    good.astype({"V7": object}).assign(V7=["twelve"] + good.V7.tolist()[1:]).to_csv(w / "text.csv", index=False)
    good.to_csv(w / "semicolons.csv", index=False, sep=";", decimal=",")  # a spreadsheet's export
    good.to_csv(w / "colons.csv", index=False)  # beside it, the same rows with commas
    good.to_csv(w / "tabs.csv", index=False, sep="\t")
    good.assign(Class=np.where(np.arange(len(good)) == 50, "caf\u00e9", "ok")).to_csv(w / "latin1.csv", index=False,
                                                                                      encoding="latin-1")
    good.to_csv(w / "utf16.csv", index=False, encoding="utf-16")  # Excel's "Unicode Text"
    good.to_csv(w / "utf16be.csv", index=False, encoding="utf-16-be")  # no byte-order mark
    (w / "dup.csv").write_text("a,b,a\n" + "\n".join(f"{i},{i},{i}" for i in range(20)) + "\n")
    text = (w / "train.csv").read_bytes()
    (w / "cut.csv").write_bytes(text[:text.rindex(b",", 0, len(text) - 200)])  # a copy cut short mid-row
    (w / "cut.csv.gz").write_bytes(gzip.compress(text)[:-20])
    (w / "plain.csv.gz").write_bytes(text)  # named .gz, never compressed
    (w / "huge.csv").write_text("a,b\n" + "\n".join(f"{i},{'1e39' if i == 3 else i}" for i in range(20)) + "\n")
    pd.DataFrame({"x": range(20), "y": [[i] for i in range(20)]}).to_parquet(w / "nested.parquet")
    good.assign(Class=[np.nan] + [0] * (len(good) - 1)).to_csv(w / "nolabel.csv", index=False)
    (w / "proj").mkdir()
    good.to_csv(w / "proj" / "data.csv", index=False)
    (w / "notes").mkdir()
    (w / "notes" / "todo.txt").write_text("mine")
    (w / "notes_heatmaps").mkdir()
    (w / "notes_heatmaps" / "mine.png").write_bytes(b"mine")
    (w / "dangling").symlink_to(w / "nowhere")
    digits = load_bundled("digits")
    for label in (0, 1):
        (w / "imgs" / str(label)).mkdir(parents=True)
        for i in np.flatnonzero(digits.labels == label)[:20]:
            Image.fromarray((digits.images[i, 0] * 255).astype(np.uint8)).save(w / "imgs" / str(label) / f"{i}.png")
    (w / "badimgs").mkdir()
    (w / "badimgs" / "broken.png").write_bytes(b"\x89PNG not really")
    (w / "bomb").mkdir()
    Image.new("L", (64, 64)).save(w / "bomb" / "bomb.png")
    claim_output_dir(w / "heat", "anomaly heat maps")  # aekit's own output, of another kind than a report
    (w / "heat" / "_overview.png").write_bytes(b"png")
    header = io.BytesIO()  # an .npz whose header asks for 10 TB in a few bytes
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**7, 10**6)})
    with zipfile.ZipFile(w / "forged.npz", "w") as z:
        z.writestr("images.npy", header.getvalue() + b"\0" * 100)
    (w / "one_token.txt").write_text("word\n" * 20)
    (w / "voice1").mkdir()
    write_wav(w / "voice1" / "a.wav", 0.1 * np.sin(np.arange(16000, dtype=np.float32) * 0.05), 16000)
    (w / "nopath.csv").write_text("speaker\nx\n")
    pcm = (np.sin(np.arange(8000) * 0.05) * 8000).astype("<i2").tobytes()  # a WAV whose header says 1 Hz
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 1, 2, 2, 16) + b"data" + struct.pack("<I", len(pcm)) + pcm
    (w / "one_hz.wav").write_bytes(b"RIFF" + struct.pack("<I", 4 + len(fmt)) + b"WAVE" + fmt)
    np.savez(w / "labelled.npz", images=(digits.images[:30, 0] * 255).astype(np.uint8), labels=np.arange(30) % 3)
    Image.fromarray(np.full((40, 50, 3), 120, np.uint8)).save(w / "photo.png")
    from aekit.apps.compress.bitstream import CHECKSUM, HEADERS, VERSION
    from aekit.apps.compress.codec import default_model

    aek = bytearray(default_model().compress(np.full((40, 50, 3), 120, np.uint8), 2)[:-CHECKSUM.size])
    fields = list(HEADERS[VERSION].unpack_from(aek))
    fields[5] = fields[6] = 65536  # a forged size, the checksum made right again
    aek[:HEADERS[VERSION].size] = HEADERS[VERSION].pack(*fields)
    (w / "forged.aek").write_bytes(bytes(aek) + CHECKSUM.pack(zlib.crc32(bytes(aek))))
    (w / "good.aek").write_bytes(default_model().compress(np.full((40, 50, 3), 120, np.uint8), 2))
    (w / "user.onnx").write_bytes(b"\x08\x07\x12\x07pytorch" + b"\0" * 64)  # another producer's graph
    (w / "clusters.csv").write_text("sample,cluster\na,0\n")  # aekit's output of another kind
    m = str(w / "m")
    assert main(["anomaly", "train", str(w / "train.csv"), "--out", m, "--label-col", "Class", "--n-estimators", "1",
                 *Q]) == 0
    assert main(["anomaly", "train", str(w / "imgs"), "--normal-value", "0", "--out", str(w / "im"),
                 "--n-estimators", "1", *Q]) == 0
    assert main(["generate", "train", str(w / "imgs"), "--out", str(w / "g"), *Q]) == 0
    assert main(["cluster", "fit", str(w / "imgs"), "--k", "2", "--out", str(w / "c"), *Q]) == 0
    assert main(["hash", "fit", str(w / "imgs"), "--bits", "8", "--out", str(w / "h"), *Q]) == 0
    assert main(["hash", "encode", str(w / "imgs"), "--model", str(w / "h"), "--out", str(w / "db.npz")]) == 0
    assert main(["vq", "train", str(w / "imgs"), "--codebook-size", "8", "--positions", "2", "--out", str(w / "v"),
                 *Q]) == 0
    assert main(["vq", "encode", str(w / "imgs"), "--model", str(w / "v"), "--out", str(w / "tokens.npz")]) == 0
    t = np.arange(300)
    series = pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=300, freq="min").astype(str),
                           "value": np.sin(t / 5)})
    series.to_csv(w / "series.csv", index=False)
    series.iloc[::-1].to_csv(w / "series_unsorted.csv", index=False)
    series.assign(value=2.0).to_csv(w / "series_constant.csv", index=False)
    series.assign(value=np.where((t > 50) & (t < 60), np.nan, series.value)).to_csv(w / "series_nan.csv", index=False)
    assert main([*train_series(w / "series.csv", w / "ms"), *Q]) == 0
    (w / "m_tampered").mkdir()
    for f in ("config.json", "model.safetensors"):
        (w / "m_tampered" / f).write_bytes((w / "m" / f).read_bytes())
    cfg = (w / "m_tampered" / "config.json").read_text().replace('"n_estimators": 1', '"n_estimators": 100')
    (w / "m_tampered" / "config.json").write_text(cfg)
    (w / "m_broken").mkdir()
    (w / "m_broken" / "config.json").write_bytes((w / "m" / "config.json").read_bytes())
    (w / "m_broken" / "model.safetensors").write_bytes(b"\0" * 100)
    return w


def train_series(data: Path, out: Path) -> list[str]:
    return ["anomaly", "train", str(data), "--time-col", "timestamp", "--window", "16", "--out", str(out)]


def _cases(w: Path) -> dict[str, tuple[list[str], str]]:
    t = lambda name: str(w / name)  # noqa: E731
    train = ["anomaly", "train"]
    score = lambda data, *rest: ["anomaly", "score", t(data), "--model", t("m"), "--out", t("o.csv"), *rest]  # noqa: E731
    return {
        # anomaly train: the data
        "train: no such file": ([*train, t("nope.csv"), "--out", t("x")], "does not exist"),
        "train: empty file": ([*train, t("empty.csv"), "--out", t("x")], "is empty"),
        "train: header only": ([*train, t("header.csv"), "--out", t("x")], "no data rows"),
        "train: not a table": ([*train, t("table.json"), "--out", t("x")], "unsupported file type"),
        "train: three rows": ([*train, t("three.csv"), "--out", t("x")], "at least 8 rows"),
        "train: constant columns": ([*train, t("constant.csv"), "--out", t("x"), *Q], "constant"),
        "train: NaN": ([*train, t("nan.csv"), "--out", t("x")], "NaN or inf"),
        "train: text in a number column": ([*train, t("text.csv"), "--out", t("x")], "non-number"),
        "train: a Latin-1 CSV": ([*train, t("latin1.csv"), "--out", t("x")], "latin1.csv is not UTF-8 text: save it"),
        "train: a UTF-16 CSV": ([*train, t("utf16.csv"), "--out", t("x")],
                                "utf16.csv is UTF-16 text; aekit reads UTF-8: save it as UTF-8, e.g. "
                                "pandas.read_csv(path, encoding='utf-16')"),
        "train: UTF-16 without its mark": ([*train, t("utf16be.csv"), "--out", t("x")], "holds NUL bytes"),
        "train: duplicate headers": ([*train, t("dup.csv"), "--out", t("x")], "duplicate column"),
        "train: nested parquet": ([*train, t("nested.parquet"), "--out", t("x")], "nested"),
        "train: beyond float32": ([*train, t("huge.csv"), "--out", t("x")], "float32"),
        "train: beyond float32 with impute": ([*train, t("huge.csv"), "--out", t("x"), "--impute", "median"], "float32"),
        # anomaly train: where the model goes
        "train: out is the data's folder": ([*train, t("proj/data.csv"), "--out", t("proj")], "holds the input"),
        "train: out is the current folder": ([*train, t("train.csv"), "--out", "."], "current folder"),
        "train: out is a csv": ([*train, t("train.csv"), "--out", t("nan.csv")], "is a file"),
        "train: out is the input": ([*train, t("train.csv"), "--out", t("train.csv")], "holds the input"),
        "train: out is a user folder": ([*train, t("train.csv"), "--out", t("notes")], "not an aekit model"),
        "train: out is another kind": ([*train, t("train.csv"), "--out", t("g")], "holds a model of kind 'generate.VAEGenerator'"),
        "train: out is a dangling link": ([*train, t("train.csv"), "--out", t("dangling")], "symbolic link"),
        "train: out under a file": ([*train, t("train.csv"), "--out", t("nan.csv/model")], "is a file"),
        # anomaly train: options
        "train: normal value without label": ([*train, t("train.csv"), "--out", t("x"), "--normal-value", "0"],
                                              "needs --label-col"),
        "train: no such label column": ([*train, t("train.csv"), "--out", t("x"), "--label-col", "kind"],
                                        "label column 'kind' not found"),
        "train: normal value never seen": ([*train, t("train.csv"), "--out", t("x"), "--label-col", "Class",
                                            "--normal-value", "7"], "no row has"),
        "train: no such categorical": ([*train, t("train.csv"), "--out", t("x"), "--categorical", "zz"],
                                       "categorical columns not found"),
        "train: no such log column": ([*train, t("train.csv"), "--out", t("x"), "--log-columns", "zz"],
                                      "log-transform"),
        "train: fpr out of range": ([*train, t("train.csv"), "--out", t("x"), "--threshold", "fpr:2"],
                                    "fpr must be in"),
        "train: unknown threshold": ([*train, t("train.csv"), "--out", t("x"), "--threshold", "p99:1"],
                                     "threshold method"),
        "train: contamination 0.9": ([*train, t("train.csv"), "--out", t("x"), "--contamination", "0.9"],
                                     "--contamination"),
        "train: epochs 0": ([*train, t("train.csv"), "--out", t("x"), "--epochs", "0"], "--epochs"),
        "train: seed -1": ([*train, t("train.csv"), "--out", t("x"), "--seed", "-1"], "--seed"),
        "train: n-estimators 0": ([*train, t("train.csv"), "--out", t("x"), "--n-estimators", "0"], "--n-estimators"),
        "train: impute mean": ([*train, t("train.csv"), "--out", t("x"), "--impute", "mean"], "--impute"),
        "train: image size 0 0": ([*train, t("imgs"), "--out", t("x"), "--image-size", "0", "0"], "--image-size"),
        "train: image size on a table": ([*train, t("train.csv"), "--out", t("x"), "--image-size", "8", "8"],
                                         "for images"),
        # anomaly train: images
        "train: undecodable image": ([*train, t("badimgs"), "--out", t("x")], "cannot be decoded"),
        "train: decompression bomb": ([*train, t("bomb"), "--out", t("x")], "decompression bomb"),
        "train: no such class": ([*train, t("imgs"), "--out", t("x"), "--normal-value", "7"], "is not a class"),
        "train: table option on images": ([*train, t("imgs"), "--out", t("x"), "--categorical", "a"], "for tables"),
        # anomaly score
        "score: no such model": (["anomaly", "score", t("train.csv"), "--model", t("nope"), "--out", t("o.csv")],
                                 "does not exist"),
        "score: model is a file": (["anomaly", "score", t("train.csv"), "--model", t("train.csv"), "--out",
                                    t("o.csv")], "is a file"),
        "score: truncated weights": (["anomaly", "score", t("train.csv"), "--model", t("m_broken"), "--out",
                                      t("o.csv")], "corrupted or truncated"),
        "score: tampered config": (["anomaly", "score", t("train.csv"), "--model", t("m_tampered"), "--out",
                                    t("o.csv")], "modified or corrupted"),
        "score: model of another kind": (["anomaly", "score", t("train.csv"), "--model", t("c"), "--out",
                                          t("o.csv")], "holds a model of kind 'codes.AutoEncoderClustering'"),
        "score: out is the input": (["anomaly", "score", t("train.csv"), "--model", t("m"), "--out",
                                     t("train.csv")], "also an input"),
        "score: out is a folder": (["anomaly", "score", t("train.csv"), "--model", t("m"), "--out", t("notes")],
                                   "is a folder"),
        "score: out is json": (["anomaly", "score", t("train.csv"), "--model", t("m"), "--out",
                                t("o.json")], "must end with .csv, .tsv, .csv.gz, .tsv.gz or .parquet"),
        "score: images with a table model": (score("imgs"), "imgs is a folder of images, not a table: this reads "
                                                              "tables"),
        "score: missing column": (score("missing.csv"), "missing column"),
        "score: NaN": (score("nan.csv"), "NaN or inf"),
        "score: text": (score("text.csv"), "non-number"),
        "score: tabs in a .csv": (score("tabs.csv"), "separated by tabs: name it .tsv"),
        "score: a text file to an image model": (["anomaly", "score", t("one_token.txt"), "--model", t("im"),
                                                  "--out", t("o.csv")], "neither a folder of images nor an image file"),
        "score: a file cut short": (score("cut.csv"), "the file looks truncated"),
        "score: a .csv.gz cut short": (score("cut.csv.gz"), "truncated or corrupted gzip file"),
        "score: a .gz never compressed": (score("plain.csv.gz"), "truncated or corrupted gzip file"),
        "train: a file cut short": ([*train, t("cut.csv"), "--out", t("x")], "the file looks truncated"),
        "score: duplicate headers": (score("dup.csv"), "duplicate column"),
        "score: top-k 0": (score("train.csv", "--top-k", "0"), "--top-k"),
        "score: top-k -1": (score("train.csv", "--top-k", "-1"), "--top-k"),
        "score: chunk rows 0": (score("train.csv", "--chunk-rows", "0"), "--chunk-rows"),
        "score: heat maps of a table": (score("train.csv", "--heatmap-dir", t("hm")),
                                        "--heatmap-dir is for image models, not a table model"),
        "score: skip unreadable for a table": (score("train.csv", "--skip-unreadable"),
                                               "--skip-unreadable is for image models, not a table model"),
        "score: no such label column": (score("train.csv", "--label-col", "kind"), "label column"),
        # eval / report
        "eval: missing labels": (["anomaly", "eval", t("nolabel.csv"), "--model", t("m"), "--label-col", "Class",
                                  "--report-dir", t("rep")], "missing value"),
        "eval: report dir is a file": (["anomaly", "eval", t("train.csv"), "--model", t("m"), "--label-col", "Class",
                                        "--report-dir", t("nan.csv")], "is a file, not a folder"),
        "eval: normal value never seen": (["anomaly", "eval", t("train.csv"), "--model", t("m"), "--label-col",
                                           "Class", "--normal-value", "7", "--report-dir", t("rep")],
                                          "no row has Class == '7' (values seen: ['0'])"),
        "report: skip unreadable for a table": (["anomaly", "report", t("train.csv"), "--model", t("m"),
                                                 "--report-dir", t("rep"), "--skip-unreadable"],
                                                "--skip-unreadable is for image models, not a table model"),
        "eval: no label column": (["anomaly", "eval", t("train.csv"), "--model", t("m"), "--report-dir", t("rep")],
                                  "eval needs --label-col"),
        "eval: image model": (["anomaly", "eval", t("imgs"), "--model", t("im"), "--label-col", "x",
                               "--report-dir", t("rep")], "--label-col is for tables"),
        "eval: images, normal value not a class": (["anomaly", "eval", t("imgs"), "--model", t("im"), "--normal-value",
                                                    "zero", "--report-dir", t("rep")],
                                                   "--normal-value 'zero' is not a class of"),
        "report: no such model": (["anomaly", "report", t("train.csv"), "--model", t("nope"), "--report-dir",
                                   t("rep")], "does not exist"),
        # generate
        "sample: n 0": (["generate", "sample", "--model", t("g"), "-n", "0", "--out", t("s.png")], "-n"),
        "sample: n ten million": (["generate", "sample", "--model", t("g"), "-n", "10000000", "--out", t("s.png")],
                                  "-n"),
        "sample: out not a png": (["generate", "sample", "--model", t("g"), "--out", t("s.txt")], "must end with .png"),
        "sample: model of another kind": (["generate", "sample", "--model", t("m"), "--out", t("s.png")],
                                          "holds a model of kind 'anomaly.AnomalyDetector'"),
        "interpolate: a million steps": (["generate", "interpolate", "digits:0", "digits:1", "--model", t("g"),
                                          "--out", t("i.png"), "--steps", "1000000"], "--steps"),
        "interpolate: bad reference": (["generate", "interpolate", "nothing", "digits:1", "--model", t("g"),
                                        "--out", t("i.png")], "neither an image file"),
        "interpolate: index out of range": (["generate", "interpolate", "digits:99999", "digits:1", "--model", t("g"),
                                             "--out", t("i.png")], "out of range"),
        "generate train: out is an anomaly model": (["generate", "train", t("imgs"), "--out", t("m"), *Q],
                                                    "holds a model of kind 'anomaly.AnomalyDetector'"),
        # cluster / hash / vq
        "cluster fit: k 1": (["cluster", "fit", t("imgs"), "--k", "1", "--out", t("x")], "--k"),
        "cluster fit: k above the data": (["cluster", "fit", t("imgs"), "--k", "100", "--out", t("x"), *Q],
                                          "need at least 200 samples"),
        "cluster fit: image size on a table": (["cluster", "fit", t("train.csv"), "--k", "2", "--out", t("x"),
                                                "--image-size", "8", "8"], "for images"),
        "cluster fit: out is the data": (["cluster", "fit", t("imgs"), "--k", "2", "--out", t("imgs")],
                                         "holds the input"),
        "cluster predict: out is the input": (["cluster", "predict", t("train.csv"), "--model", t("c"), "--out",
                                               t("train.csv")], "also an input"),
        "hash fit: bits 0": (["hash", "fit", t("imgs"), "--bits", "0", "--out", t("x")], "--bits"),
        "hash fit: health plot over the input": (["hash", "fit", t("imgs"), "--out", t("x"), "--health-png",
                                                  t("train.csv")], "must end with .png"),
        "demo: out is a file": (["anomaly", "demo", "--out", t("train.csv"), "--quiet"], "is a file, not a folder"),
        "hash search: database not npz": (["hash", "search", t("imgs"), "--model", t("h"), "--database",
                                           t("train.csv"), "--out", t("r.csv")], "is not a readable .npz file"),
        "hash search: k 0": (["hash", "search", t("imgs"), "--model", t("h"), "--database", t("db.npz"), "-k", "0",
                              "--out", t("r.csv")], "-k"),
        "hash search: k -5": (["hash", "search", t("imgs"), "--model", t("h"), "--database", t("db.npz"), "-k", "-5",
                               "--out", t("r.csv")], "-k"),
        "hash encode: out not npz": (["hash", "encode", t("imgs"), "--model", t("h"), "--out", t("db.csv")],
                                     "must end with .npz"),
        "hash bits: bad reference": (["hash", "bits", "digits:x", "--model", t("h"), "--out", t("b.png")],
                                     "neither an image file"),
        "vq train: codebook of ten million": (["vq", "train", t("imgs"), "--out", t("x"), "--codebook-size",
                                               "10000000"], "--codebook-size"),
        "vq train: codebook picture of a table": (["vq", "train", t("train.csv"), "--out", t("x"), "--codebook-png",
                                                   t("cb.png")], "draws images"),
        "vq train: out is a user folder": (["vq", "train", t("imgs"), "--out", t("notes")], "not an aekit model"),
        "vq encode: a table for an image model": (["vq", "encode", t("train.csv"), "--model", t("v"), "--out",
                                                   t("x.npz")], "trained on images of"),
        "vq decode: hash codes, not tokens": (["vq", "decode", t("db.npz"), "--model", t("v"), "--out", t("x.png")],
                                              "not a token file from 'aekit vq encode'"),
        "vq decode: over the tokens": (["vq", "decode", t("tokens.npz"), "--model", t("v"), "--out",
                                        t("tokens.npz")], "must end with .png"),
        # folders of outputs: new, empty, or aekit's own output of the same kind
        "demo: out is a user folder": (["anomaly", "demo", "--out", t("notes"), "--quiet"], "aekit did not make"),
        "demo: out is the current folder": (["anomaly", "demo", "--out", ".", "--quiet"], "current folder"),
        "eval: report dir is a user folder": (["anomaly", "eval", t("train.csv"), "--model", t("m"), "--label-col",
                                               "Class", "--report-dir", t("notes")], "aekit did not make"),
        "report: report dir holds the data": (["anomaly", "report", t("proj/data.csv"), "--model", t("m"),
                                               "--report-dir", t("proj")], "holds the input"),
        "report: report dir is another output": (["anomaly", "report", t("train.csv"), "--model", t("m"),
                                                  "--report-dir", t("heat")], "'anomaly heat maps' output"),
        "score: heat maps into a user folder": (["anomaly", "score", t("imgs"), "--model", t("im"), "--out", t("o.csv"),
                                                 "--heatmap-dir", t("notes")], "aekit did not make"),
        "score: the default heat-map folder is a user folder": (
            ["anomaly", "score", t("imgs"), "--model", t("im"), "--out", t("notes.csv")],
            "the heat-map folder (see --heatmap-dir) " + t("notes_heatmaps") + " is a folder that aekit did not make"),
        # output files: new, empty, or aekit's own earlier output of the same kind (its mark)
        "score: out is a user's CSV": (score("train.csv")[:-1] + [t("three.csv")], "aekit did not write it"),
        "score: out is aekit's clusters": (score("train.csv")[:-1] + [t("clusters.csv")],
                                           "holds aekit's clusters output; it will not be replaced by anomaly scores"),
        "cluster predict: out is a user's CSV": (["cluster", "predict", t("imgs"), "--model", t("c"), "--out",
                                                  t("three.csv")], "aekit did not write it"),
        "hash search: out is a user's CSV": (["hash", "search", t("imgs"), "--model", t("h"), "--database",
                                              t("db.npz"), "--out", t("three.csv")], "aekit did not write it"),
        "hash encode: out is a user's npz": (["hash", "encode", t("imgs"), "--model", t("h"), "--out",
                                              t("labelled.npz")], "aekit did not write it"),
        "sample: out is a user's PNG": (["generate", "sample", "--model", t("g"), "--out", t("photo.png")],
                                        "aekit did not write it"),
        "sample: --npz is a user's npz": (["generate", "sample", "--model", t("g"), "--out", t("s.png"), "--npz",
                                           t("labelled.npz")], "--npz " + t("labelled.npz") + " exists"),
        "hash bits: out is a user's PNG": (["hash", "bits", "digits:0", "--model", t("h"), "--out", t("photo.png")],
                                           "aekit did not write it"),
        "compress decode: out is the original photo": (["compress", "decode", t("good.aek"), "--out",
                                                        t("photo.png")], "aekit did not write it"),
        "export: out is another producer's graph": (["anomaly", "export", "--model", t("m"), "--out", t("user.onnx")],
                                                    "aekit did not write it"),
        "voice convert: out is a user's WAV": (["voice", "convert", "--source", t("voice1/a.wav"), "--target",
                                                t("voice1/a.wav"), "--out", t("one_hz.wav")], "aekit did not write it"),
        "summarize run: out is a user's text": (["summarize", "run", t("one_token.txt"), "--out", t("notes/todo.txt")],
                                                "aekit did not write it"),
        "tree generate: out is a user's text": (["tree", "generate", "arithmetic", "--out", t("notes/todo.txt")],
                                                "aekit did not write it"),
        # images of another size or kind than the model's, and indices
        "interpolate: negative index": (["generate", "interpolate", "digits:-1", "digits:1", "--model", t("g"),
                                         "--out", t("i.png")], "out of range (0 to 1796)"),
        "generate train: a label the npz lacks": (["generate", "train", t("labelled.npz"), "--class", "42", "--out",
                                                   t("x")], "not a label in"),
        "cluster predict: a table for an image model": (["cluster", "predict", t("train.csv"), "--model", t("c"),
                                                         "--out", t("p.csv")], "trained on images"),
        "hash encode: a table for an image model": (["hash", "encode", t("train.csv"), "--model", t("h"), "--out",
                                                     t("e.npz")], "trained on images"),
        "hash encode: a forged .npz": (["hash", "encode", t("forged.npz"), "--model", t("h"), "--out", t("e.npz")],
                                       "claims a 10000000x1000000 array of uint8"),
        "generate train: a forged .npz": (["generate", "train", t("forged.npz"), "--out", t("x")], "damaged or forged"),
        # codec files and flags
        "compress encode: a quality the codec lacks": (["compress", "encode", t("photo.png"), "--quality", "11",
                                                        "--out", t("q.aek")], "--quality must be in [1, 10]"),
        "compress encode: quality 0": (["compress", "encode", t("photo.png"), "--quality", "0", "--out", t("q.aek")],
                                       "must be >= 1"),
        "compress decode: a forged size": (["compress", "decode", t("forged.aek"), "--out", t("d.png")],
                                           "more pixels than aekit encodes"),
        # text and speech corpora that leave nothing to learn from
        "tree train: one-token lines": (["tree", "train", t("one_token.txt"), "--out", t("x")], "20 of one token"),
        "voice train: one recording": (["voice", "train", t("voice1"), "--out", t("x")], "2 recordings"),
        "voice train: a CSV without path": (["voice", "train", t("nopath.csv"), "--out", t("x")],
                                            "needs the column path (missing: path; found: speaker)"),
        "voice convert: an unwritable folder": (["voice", "convert", "--source", t("voice1/a.wav"), "--target", t("voice1/a.wav"), "--out",
                                                 "/sys/converted.wav"], "cannot write --out /sys/converted.wav"),
        "voice convert: a forged sample rate": (["voice", "convert", "--source", t("one_hz.wav"), "--target",
                                                 t("voice1/a.wav"), "--out", t("c.wav")], "sample rate is 1 Hz"),
        # time series
        "series: no such time column": (["anomaly", "train", t("series.csv"), "--time-col", "time", "--out", t("x")],
                                        "no time column 'time'"),
        "series: unsorted times": ([*train_series(w / "series_unsorted.csv", w / "x")], "times go back at data row 2"),
        "series: a NaN run": ([*train_series(w / "series_nan.csv", w / "x")], "has 9 missing"),
        "series: a constant series": ([*train_series(w / "series_constant.csv", w / "x")], "is constant"),
        "series: --vae": ([*train_series(w / "series.csv", w / "x"), "--vae"], "--vae is not for time series"),
        "series: scored with --id-col": (["anomaly", "score", t("series.csv"), "--model", t("ms"), "--out", t("o.csv"),
                                          "--id-col", "value"], "this model was trained on one series"),
        "series: scored unsorted": (["anomaly", "score", t("series_unsorted.csv"), "--model", t("ms"), "--out",
                                     t("o.csv")], "times go back"),
        "series: a table model on no channel": (["anomaly", "score", t("train.csv"), "--model", t("ms"), "--out",
                                                 t("o.csv")], "no time column 'timestamp'"),
        # scoring on Dask
        "dask: scheduler not an address": (score("train.csv", "--engine", "dask", "--scheduler", "notaurl"),
                                           "cannot reach the Dask scheduler 'notaurl'"),
        "dask: a glob matching nothing": (score("nomatch*.csv", "--engine", "dask"), "matches no file"),
        "dask: an empty file": (score("empty.csv", "--engine", "dask"), "empty.csv is empty"),
        "dask: a pattern of unlike separators": (score("*colons.csv", "--engine", "dask"),
                                                 "separates its fields by ';' with ',' decimals, "),
        "dask: duplicate column names": (score("dup.csv", "--engine", "dask"), "duplicate column names"),
        "dask: a missing column": (score("missing.csv", "--engine", "dask"), "missing column(s) ['V3']"),
    }


CASE_NAMES = list(_cases(Path("/ws")))


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if not p.is_symlink()}


def test_the_suite_is_large():
    assert len(CASE_NAMES) >= 60


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_gives_one_line_exit_2_and_touches_nothing(name, ws, capsys, monkeypatch):
    import PIL.Image

    monkeypatch.chdir(ws)
    if "bomb" in name:
        monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)  # so that a 64x64 file is a "bomb"
    argv, message = _cases(ws)[name]
    before = _snapshot(ws)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("aekit: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert message in err, err
    assert _snapshot(ws) == before, "a file was touched"
    assert os.path.exists(ws / "proj" / "data.csv")


def test_reference_images_of_another_size_are_converted_to_the_model(ws, tmp_path):
    """A 50x40 RGB photo against 8x8 gray models: converted as scoring converts images."""
    assert main(["generate", "interpolate", str(ws / "photo.png"), "digits:0", "--model", str(ws / "g"),
                 "--out", str(tmp_path / "i.png"), "--steps", "3"]) == 0
    assert main(["hash", "bits", str(ws / "photo.png"), "--model", str(ws / "h"), "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "i.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0


def test_output_folders_are_replaced_only_when_aekit_made_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["anomaly", "demo", "--out", "d", "--quiet"]) == 0
    first = (tmp_path / "d" / "report" / "metrics.json").read_text()
    assert main(["anomaly", "demo", "--out", "d", "--quiet"]) == 0  # its own earlier output: replaced
    assert (tmp_path / "d" / "report" / "metrics.json").read_text() == first
    (tmp_path / "empty").mkdir()
    for report_dir in ("r", "r", "empty"):  # new, then its own, then an empty folder
        assert main(["anomaly", "eval", "d/test.csv", "--model", "d/model", "--label-col", "diagnosis",
                     "--normal-value", "benign", "--report-dir", report_dir, "--quiet"]) == 0
    assert (tmp_path / "empty" / "roc_curve.png").exists()
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "test.csv").write_text("mine")
    assert main(["anomaly", "demo", "--out", "u", "--quiet"]) == 2
    assert main(["anomaly", "report", "d/test.csv", "--model", "d/model", "--report-dir", "d"]) == 2  # the demo's
    assert (tmp_path / "u" / "test.csv").read_text() == "mine" and not (tmp_path / "u" / "model").exists()


def test_output_files_are_replaced_only_when_aekit_wrote_them(ws, tmp_path):
    """Each writer marks its file (``aekit.marks``): a rerun over its own output replaces it;
    a format that holds no mark (BMP, plain text) is written once and then refused."""
    w, o = ws, tmp_path
    runs = [
        ["anomaly", "score", str(w / "train.csv"), "--model", str(w / "m"), "--out", str(o / "s.csv"), "--quiet"],
        ["anomaly", "export", "--model", str(w / "m"), "--out", str(o / "m.onnx")],
        ["generate", "sample", "--model", str(w / "g"), "-n", "4", "--out", str(o / "g.png"), "--npz", str(o / "g.npz")],
        ["cluster", "predict", str(w / "imgs"), "--model", str(w / "c"), "--out", str(o / "p.csv")],
        ["hash", "encode", str(w / "imgs"), "--model", str(w / "h"), "--out", str(o / "e.npz")],
        ["hash", "search", str(w / "imgs"), "--model", str(w / "h"), "--database", str(w / "db.npz"), "--out",
         str(o / "r.csv")],
        ["compress", "encode", str(w / "photo.png"), "--quality", "2", "--out", str(o / "c.aek")],
        ["compress", "decode", str(w / "good.aek"), "--out", str(o / "d.png")],
        ["compress", "decode", str(w / "good.aek"), "--out", str(o / "d.tif")],
        ["voice", "convert", "--source", str(w / "voice1/a.wav"), "--target", str(w / "voice1/a.wav"), "--out",
         str(o / "v.wav")],
        ["vq", "encode", str(w / "imgs"), "--model", str(w / "v"), "--out", str(o / "tok.npz")],
        ["vq", "decode", str(w / "tokens.npz"), "--model", str(w / "v"), "--out", str(o / "vq.png"), "--npz",
         str(o / "vq.npz")],
        ["tree", "generate", "arithmetic", "--sentences", "5", "--out", str(o / "t1.txt"), "--trees", str(o / "t.jsonl")],
    ]
    for argv in runs + runs[:-1]:  # each twice: the second replaces the first's output
        assert main(argv) == 0, argv
    assert main(["tree", "generate", "arithmetic", "--sentences", "5", "--out", str(o / "t2.txt"), "--trees",
                 str(o / "t.jsonl")]) == 0  # JSON lines of trees: known by their first record
    assert main(["tree", "generate", "arithmetic", "--sentences", "5", "--out", str(o / "t1.txt")]) == 2  # text
    assert main(["compress", "decode", str(w / "good.aek"), "--out", str(o / "d.bmp")]) == 0
    assert main(["compress", "decode", str(w / "good.aek"), "--out", str(o / "d.bmp")]) == 2  # a BMP holds no mark
    (o / "empty.csv").write_text("")  # nothing of yours to lose
    assert main(["cluster", "predict", str(w / "imgs"), "--model", str(w / "c"), "--out", str(o / "empty.csv")]) == 0
    assert np.load(o / "g.npz")["images"].shape[0] == 4  # the mark leaves the arrays as they were
