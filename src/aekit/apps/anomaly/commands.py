"""``aekit anomaly <verb>``: the anomaly detector's command-line verbs (parsing only; the
work is in ``jobs.py``, imported when a verb runs)."""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, BinaryIO

from ...cliargs import (STDIO, application, comma_names, drop_cols_flag, float_in, image_size_flag, int_at_least,
                        int_or_auto, report, stdin_as_file, training_flags)
from ...errors import AekitError, DataError
from ...memory import importing_without_collections, keep_freed_memory

if TYPE_CHECKING:
    import pandas as pd


SKIP_UNREADABLE_HELP = ("images: leave out the files that cannot be read (empty, cut short, not an image) and "
                        "name them, instead of stopping at the first")


def register(sub: argparse._SubParsersAction) -> None:
    verbs = application(sub, "anomaly", help="anomaly detection on tables, time series and images: train on normal data, score new data",
                        description="Anomaly detection on CSV/Parquet tables, time series and images.", run=run)

    def columns(p: argparse.ArgumentParser, label_help: str) -> None:
        p.add_argument("--label-col", help=label_help)
        p.add_argument("--id-col", help="an ID column: excluded from features, copied to outputs; for a time "
                       "series, the column that names each row's series (a machine, a sensor)")

    t = verbs.add_parser("train", help="train a detector on a table, a time series or images",
                         description="Train a detector on a table (CSV or Parquet with a header), on a time "
                                     "series (a table with --time-col and/or --window: one column per channel, "
                                     "a normal stretch), or on images (a folder of PNG/JPEG files, an .npz "
                                     "array, or 'digits' / 'lfw_subset') and save it as a model directory.")
    t.add_argument("data", help="training table (.csv, .tsv, .parquet, or a folder of .parquet files) or image source")
    t.add_argument("--out", required=True, help="model directory to write (new, or an earlier model of the same kind)")
    columns(t, "label column (excluded from features)")
    drop_cols_flag(t)
    t.add_argument("--normal-value", help="train only on rows whose label equals this value (e.g. 'normal.' or 0); "
                   "for an image folder with class subfolders, the normal class")
    t.add_argument("--threshold", help="'fpr:0.01' (false-alarm rate on clean rows: the held-out ones, for tables "
                   "also the training rows scored leave-one-out), 'contamination:0.05', or a score; default: "
                   "--contamination")
    t.add_argument("--contamination", type=float_in(1e-6, 0.5), default=0.1,
                   help="expected anomaly share (default 0.1)")
    t.add_argument("--categorical", help="comma-separated categorical columns (default: non-numeric columns)")
    t.add_argument("--log-columns", help="comma-separated heavy-tailed columns to log-transform (e.g. Amount)")
    t.add_argument("--na-values", metavar="A,B",
                   help="tables: comma-separated text that marks a missing value (e.g. '?'), read as missing in "
                        "training and scoring (--impute median fills them)")
    t.add_argument("--impute", choices=["median", "ffill"],
                   help="fill NaN/inf instead of failing: tables 'median' (the training median), time series "
                        "'ffill' (the value before each in its series)")
    t.add_argument("--vae", action="store_true", help="a variational autoencoder (Gaussian code), tables or images")
    t.add_argument("--n-estimators", type=int_at_least(1, 100),
                   help="autoencoders in the seed ensemble (default: 1 for tables and series, 2 for images, 3 for --vae images)")
    image_size_flag(t)
    t.add_argument("--time-col", help="a time series: the time column (rows in time order, no repeats); "
                   "every other column but --label-col/--id-col is a channel; with --id-col the table holds one "
                   "series per ID (a machine, a sensor), each in time order")
    t.add_argument("--series-scaling", choices=["each", "shared"],
                   help="a table of several series (--time-col/--window with --id-col): scale each series by its own "
                   "training mean and deviation (each, the default) or all alike (shared: one machine's level "
                   "against the others' is itself a sign)")
    t.add_argument("--window", type=int_or_auto(2, 4096),
                   help="a time series: rows per window (default 64; 'auto': two cycles of the series' own period, "
                        "16-256 rows; a series without --time-col needs it)")
    training_flags(t, epochs=None,
                   epochs_default="50 for tables (on a large table, about 4,000 optimizer steps, at least 3 epochs) "
                                  "and series, about 1,500 steps for images, 100 for --vae images")

    s = verbs.add_parser("score", help="score a table or a time series (streamed in chunks), or images",
                         description="Score a table in chunks (bounded memory) and write a CSV or Parquet "
                                     "file with score, is_anomaly and top_features; a time series the same way "
                                     "(its time column, score, is_anomaly, top_channels: every row, scores "
                                     "independent of the chunk size); or score images and write a CSV or Parquet "
                                     "file plus heat-map PNGs of the highest-scoring flagged images.")
    s.add_argument("data", help="a table, a time series or images; '-': a CSV (or .csv.gz, Parquet) on standard input")
    s.add_argument("--model", required=True, help="model directory from 'aekit anomaly train'")
    s.add_argument("--out", required=True, help="output file: .csv, .tsv (either may end .gz, gzipped) or .parquet (never "
                                                    "one of the inputs); '-': CSV on standard output")
    columns(s, "label column to copy to the output (not a feature)")
    s.add_argument("--top-k", type=int_at_least(1, 1000), default=3, help="top contributing features per row (default 3)")
    s.add_argument("--chunk-rows", type=int_at_least(1), default=50_000,
                   help="rows per chunk (default 50000; images: at most 1024, decoded one chunk ahead)")
    s.add_argument("--heatmaps", type=int_at_least(0), default=20,
                   help="images: heat maps of the N highest-scoring flagged images (default 20; 0: none)")
    s.add_argument("--heatmap-dir", help="images: folder for the heat maps (default OUT_heatmaps/)")
    s.add_argument("--skip-unreadable", action="store_true", help=SKIP_UNREADABLE_HELP)
    s.add_argument("--engine", choices=["local", "dask"], default="local",
                   help="local: this process, in chunks (default); dask: partitions on a Dask cluster "
                        "(CSV/Parquet paths, globs or fsspec URLs, or a folder of images; --out .csv or a "
                        ".parquet folder)")
    s.add_argument("--scheduler", help="with --engine dask: the scheduler's address (default: a LocalCluster)")
    s.add_argument("--workers", type=int_at_least(1, 256), default=2,
                   help="with --engine dask and no --scheduler: LocalCluster worker processes (default 2)")
    s.add_argument("--quiet", action="store_true")

    x = verbs.add_parser("export", help="export a detector as an ONNX graph",
                         description="Write the detector as one ONNX graph: input the raw numeric columns "
                                     "(float32, the model card's order; for a time-series model, one series' "
                                     "channels in time order), outputs score and is_anomaly; the scaling, the "
                                     "ensemble and the density terms (and a series' windows) are inside, the "
                                     "threshold and column names in its metadata.")
    x.add_argument("--model", required=True, help="model directory from 'aekit anomaly train'")
    x.add_argument("--format", choices=["onnx"], default="onnx")
    x.add_argument("--out", required=True, help="the .onnx file to write")

    h = verbs.add_parser("threshold", help="set a trained detector's threshold anew, without retraining",
                         description="Set a trained detector's threshold without retraining: a false-alarm rate "
                                     "read on data you know is normal (fpr:R with --clean), a share of its training "
                                     "scores (contamination:C), or a score. The model directory is rewritten "
                                     "atomically (a running 'aekit serve' reloads it), or --out writes a copy.")
    h.add_argument("--model", required=True, help="model directory from 'aekit anomaly train'")
    h.add_argument("--threshold", required=True, help="'fpr:0.01' (with --clean), 'contamination:0.05', or a score")
    h.add_argument("--clean", help="data known to be normal, of the model's kind (a table, a series' CSV, a folder "
                                   "of images), never trained on: what fpr:R reads; columns the model does not "
                                   "read are left out")
    h.add_argument("--label-col", help="a label column of --clean: only its normal rows are read (with "
                                       "--normal-value, or labels 0/1)")
    h.add_argument("--normal-value", help="the label value of --clean's normal rows, or an image model's normal "
                                          "class folder")
    h.add_argument("--out", help="model directory to write (default: --model itself)")

    for verb, help_ in (
        ("eval", "metrics against labels, plus the report PNGs (images: their class folders are the labels)"),
        ("report", "the report PNGs (scores histogram, top anomalies' contributions or, for a time series, the "
                   "series with its score and flagged stretches, or for images, galleries of them beside their "
                   "anomaly maps; ROC with labels)"),
    ):
        e = verbs.add_parser(verb, help=help_, description=help_[0].upper() + help_[1:] + ".")
        e.add_argument("data")
        e.add_argument("--model", required=True)
        e.add_argument("--label-col", help="label column (eval of a table or series: required)")
        e.add_argument("--id-col", help="ID column (names the rows in the report)")
        e.add_argument("--normal-value", help="the label value of normal rows, or an image model's normal class "
                                              "folder (default: labels are 0/1)")
        e.add_argument("--report-dir", "--out", default="report",  # --out: as train and score name theirs
                       help="where the PNGs go (default ./report)")
        e.add_argument("--skip-unreadable", action="store_true", help=SKIP_UNREADABLE_HELP)
        e.add_argument("--quiet", action="store_true")

    d = verbs.add_parser("demo", help="train and evaluate on the bundled breast-cancer data",
                         description="Train on 60%% of the benign rows of scikit-learn's breast cancer data; "
                                     "test on the rest plus every malignant row; print metrics, write the report.")
    d.add_argument("--out", default="demo_output")
    d.add_argument("--seed", type=int_at_least(0), default=0)
    d.add_argument("--quiet", action="store_true")

    # `aekit serve`: a command of its own (what operators type), served by this application
    v = sub.add_parser("serve", help="serve a table, time-series or image detector over HTTP (score, model card, "
                       "health, metrics)",
                       description="Serve a table, time-series or image detector over HTTP: POST /v1/score (JSON "
                                   "records or CSV; a time-series model scores the request's rows as series of their "
                                   "own; an image model takes an image file, or base64 files in JSON), "
                                   "GET /v1/model, /healthz, /readyz, /metrics. A new model written at --model "
                                   "is picked up without a restart. With the environment variable AEKIT_API_KEY "
                                   "set, /v1/ requests need the header X-API-Key.")
    v.set_defaults(run=run_serve)
    v.add_argument("--model", required=True, help="model directory from 'aekit anomaly train'")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=int_at_least(1, 65535), default=8000, help="default 8000")
    v.add_argument("--max-rows", type=int_at_least(1), default=10_000, help="rows (or images) per request (default 10000)")
    v.add_argument("--max-body-mb", type=float_in(0.001, 4096), default=16.0, help="request body size (default 16)")
    v.add_argument("--top-k", type=int_at_least(1, 1000), default=3, help="top contributing columns per row")
    v.add_argument("--reload-interval", type=float_in(0, 3600), default=2.0,
                   help="seconds between looks for a new model at --model (0: never; default 2)")
    v.add_argument("--threads", type=int_at_least(1, 256), default=1,
                   help="torch threads for scoring (default 1: the event loop keeps a core)")
    v.add_argument("--body-timeout", type=float_in(0.1, 3600), default=10.0,
                   help="seconds for a request's headers, then its body, to arrive whole; else the "
                        "connection is closed (a late body is answered 408) (default 10)")
    v.add_argument("--max-connections", type=int_at_least(1, 100_000), default=100,
                   help="connections open at once; more are answered 503 (default 100)")
    v.add_argument("--access-log", action="store_true", help="log every request")


def _deploy_module(name: str) -> ModuleType:
    """A module that needs the ``deploy`` extra; a missing package is a one-line error."""
    try:
        return import_module(f".{name}", __package__)
    except ModuleNotFoundError as exc:
        raise DataError(f"the package {exc.name!r} is missing: pip install 'aekit[deploy]'") from None


def run_serve(args: argparse.Namespace) -> int:
    service = _deploy_module("service")
    options = service.ServiceOptions(max_rows=args.max_rows, max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                                     top_k=args.top_k, reload_interval=args.reload_interval,
                                     body_timeout=args.body_timeout)
    service.serve(args.model, args.host, args.port, options, access_log=args.access_log, threads=args.threads,
                  max_connections=args.max_connections)
    return 0


def run(args: argparse.Namespace) -> int:
    """The verb, with ``score``'s standard input and output where its data or ``--out`` is
    ``-``: the scores go to standard output as CSV and what the command says to standard
    error; the data is read from a copy of standard input, named "stdin" in messages."""
    if args.verb != "score" or STDIO not in (args.data, args.out):
        return _run(args, getattr(args, "out", None))
    if args.engine == "dask":
        raise DataError("'-' (standard input or output) is for --engine local; Dask reads and writes files")
    out = sys.stdout.buffer if args.out == STDIO else args.out
    with contextlib.ExitStack() as stack:
        if out is not args.out:
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        if args.data != STDIO:
            return _run(args, out)
        path = stack.enter_context(stdin_as_file())
        args.data = str(path)
        try:
            return _run(args, out)
        except AekitError as exc:  # the copy's temporary path means nothing to the user
            raise type(exc)(str(exc).replace(str(path), "stdin")) from None


def _run(args: argparse.Namespace, out: str | BinaryIO | None) -> int:
    verbose = 0 if getattr(args, "quiet", False) else 1
    if args.verb == "score" and args.scheduler and args.engine != "dask":
        raise DataError("--scheduler needs --engine dask")
    if args.verb == "score" and args.engine == "local":
        keep_freed_memory()  # a process that allocates each chunk's arrays anew (aekit.memory)
    if args.verb == "score" and args.engine == "local" and not args.heatmap_dir and not args.skip_unreadable:
        # a table model scores in numpy: no torch import, so the first row comes seconds sooner
        with importing_without_collections():
            from .light import score_table

        summary = score_table(args.data, args.model, out, id_col=args.id_col, label_col=args.label_col,
                              top_k=args.top_k, chunksize=args.chunk_rows, verbose=verbose)
        if summary is not None:
            _print_score_summary(args, summary)
            return 0
    if args.verb == "score" and args.engine == "local":
        # an image model with its saved graph scores in ONNX Runtime: no torch import either
        with importing_without_collections():
            from .onnx_images import score_images_file

        summary = score_images_file(args.data, args.model, out, id_col=args.id_col, label_col=args.label_col,
                                    heatmap_dir=args.heatmap_dir, heatmaps=args.heatmaps, chunksize=args.chunk_rows,
                                    verbose=verbose, skip_unreadable=args.skip_unreadable)
        if summary is not None:
            _print_score_summary(args, summary)
            return 0
    with importing_without_collections():
        from . import jobs

    if args.verb == "train":
        params = dict(contamination=args.contamination, threshold=args.threshold, impute=args.impute,
                      random_state=args.seed, verbose=verbose, image_size=args.image_size)
        # unset: each detector's own default (they differ between tables and images)
        params.update({k: v for k, v in (("n_estimators", args.n_estimators), ("epochs", args.epochs))
                       if v is not None})
        if args.categorical:
            params["categorical"] = comma_names(args.categorical)
        if args.log_columns:
            params["log_columns"] = comma_names(args.log_columns)
        if args.na_values:
            params["na_values"] = comma_names(args.na_values)
        if args.series_scaling is not None and (args.id_col is None or (args.time_col, args.window) == (None, None)):
            raise DataError("--series-scaling is for a table of several series: give --id-col and --time-col "
                            "(or --window)")
        if args.time_col is not None or args.window is not None:
            params.update(time_col=args.time_col, window=args.window, series_scaling=args.series_scaling)
        det = jobs.train_file(args.data, args.out, label_col=args.label_col, normal_value=args.normal_value,
                              id_col=args.id_col, drop_cols=args.drop_cols, vae=args.vae, resume=args.resume, **params)
        from ...data.series import condensed

        for line in condensed(getattr(det.adapter_, "notices_", [])):
            report(f"note: {line}")
        sep = " " if det.adapter_.kind == "image" else " rows, "  # "100 images of 1x8x8", "569 rows, 30 columns"
        import numpy as np

        trained = int(np.isfinite(det.decision_scores_).sum())  # a series too short to learn from scores NaN
        report(f"trained on {trained}{sep}{det.adapter_.describe()}; "
               f"threshold {det.threshold_:.4g} ({det.threshold_rule_.describe()})")
        report(f"model written to {args.out}")
    elif args.verb == "score" and args.engine == "dask":
        summary = _deploy_module("batch").score_dask(args.data, args.model, args.out, scheduler=args.scheduler, workers=args.workers,
                             id_col=args.id_col, label_col=args.label_col, top_k=args.top_k,
                             heatmap_dir=args.heatmap_dir, heatmaps=args.heatmaps,
                             skip_unreadable=args.skip_unreadable)
        _print_score_summary(args, summary, engine=" on Dask")
    elif args.verb == "threshold":
        before, det = jobs.set_model_threshold(args.model, args.threshold, clean=args.clean, out=args.out,
                                               label_col=args.label_col, normal_value=args.normal_value)
        print(f"threshold {before} -> {det.threshold_:.4g} ({det.threshold_rule_.describe()}); "
              f"model written to {args.out or args.model}")
    elif args.verb == "export":
        meta = _deploy_module("export").export_onnx(args.model, args.out)
        print(f"wrote {args.out}: input {meta['input']}; outputs score, is_anomaly (threshold {meta['threshold']})")
    elif args.verb == "score":
        summary = jobs.score_file(args.data, args.model, out, id_col=args.id_col, label_col=args.label_col,
                                  top_k=args.top_k, chunksize=args.chunk_rows, verbose=verbose,
                                  heatmap_dir=args.heatmap_dir, heatmaps=args.heatmaps,
                                  skip_unreadable=args.skip_unreadable)
        _print_score_summary(args, summary)
        _print_most_flagged(getattr(summary, "by_series", None), listed=False)
    elif args.verb in ("eval", "report"):
        analysis = jobs.analyse_file(args.data, args.model, args.report_dir, label_col=args.label_col,
                                     normal_value=args.normal_value, id_col=args.id_col, verbose=verbose,
                                     labelled=args.verb == "eval", skip_unreadable=args.skip_unreadable)
        print(f"model threshold: {analysis.threshold_rule}")
        for line in getattr(analysis, "notices", []):
            print(f"note: {line}")
        _print_most_flagged(getattr(analysis, "by_series", None))
        _print_events(getattr(analysis, "events", None))
        flagged = int((analysis.scores > analysis.threshold).sum())
        if analysis.metrics is not None:
            print("\n".join(analysis.metrics.lines(getattr(analysis, "unit", "rows"))))
            if getattr(analysis, "event_metrics", None) is not None:
                print("\n".join(analysis.event_metrics.lines()))
            _print_classes(getattr(analysis, "by_class", None))
        else:
            print(f"scored {len(analysis.scores)} {getattr(analysis, 'unit', 'rows')}, flagged {flagged} "
                  f"(threshold {analysis.threshold:.4g})")
        # with labels, many flagged rows are the anomalies the labels name, not a surprise
        _print_flagged_columns(analysis, len(analysis.scores), flagged, surprise=analysis.metrics is None)
        print("report: " + ", ".join(str(p) for p in analysis.report_paths))
    elif args.verb == "demo":
        analysis = jobs.run_demo(args.out, seed=args.seed, verbose=verbose)
        print("aekit demo: breast cancer (benign = normal), AnomalyDetector defaults, threshold fpr:0.05")
        print("\n".join(analysis.metrics.lines()))
        print("report: " + ", ".join(str(p) for p in analysis.report_paths))
    return 0


def _print_classes(by_class: pd.DataFrame | None) -> None:
    """Each label value's (or image class's) share flagged and, for an anomalous one, its
    AUC-ROC against the normal ones (``report.class_breakdown``)."""
    if by_class is None:
        return
    unit = by_class.columns[2]  # "rows" or "images"
    print(f"by label value: {unit}, share flagged, AUC-ROC against the normal value")
    for name, normal, count, flagged, auc in by_class.itertuples(index=False):
        print(f"  {name:<20s} {count:7d}  {flagged:6.1%}  {'normal' if normal else f'{auc:.4f}'}")


def _print_most_flagged(by_series: pd.DataFrame | None, shown: int = 5, listed: bool = True) -> None:
    """The series with the most flagged rows (of a table of several series), and where all
    are listed (``listed``: in the report's summary file)."""
    if by_series is None:
        return
    from .series_jobs import SUMMARY_FILE  # loaded already: a series was scored

    top = by_series.head(shown)
    parts = [f"{str(row.iloc[0])!r} ({'not scored' if math.isnan(row.max_score) else f'{row.flagged} of {row.rows}'})"
             for _, row in top.iterrows()]  # a series shorter than a window has no score
    more = ""
    if len(by_series) > shown:
        more = f"; all {len(by_series)} in {SUMMARY_FILE}" if listed else f"; {len(by_series)} series in all"
    print(f"most flagged series ({by_series.columns[0]}): " + ", ".join(parts) + more)


def _print_events(events: pd.DataFrame | None, shown: int = 3) -> None:
    """The number of flagged events (runs of flagged rows) of a series report, and the highest."""
    if events is None:
        return
    from .series_jobs import EVENTS_FILE  # loaded already: a series was analysed

    print(f"flagged events: {len(events)} (all in {EVENTS_FILE})" + (", the highest:" if len(events) else ""))
    for _, event in events.head(shown).iterrows():
        series = f"{event.iloc[0]!r} " if events.columns[0] != "start" else ""
        print(f"  {series}{event.start} to {event.end} ({event.rows} rows): peak {event.max_score:.4g} at "
              f"{event.peak}, mostly {event.top_channel}")


def _print_flagged_columns(found: object, rows: int, flagged: int, surprise: bool = True) -> None:
    """The columns that lead the flagged rows' scores (a table's ``leaders``), and, with
    ``surprise``, a note where far more rows are flagged than the threshold flags among rows
    like the training ones (more than 3 times its rate and 25 points above it)."""
    leaders = getattr(found, "leaders", None)
    if leaders:
        shown = ", ".join(f"{column} {count:,}" for column, count in list(leaders.items())[:3])
        print(f"flagged rows by the column that leads their score: {shown}")
    share = getattr(found, "expected_share", None)
    if surprise and share and rows >= 100 and flagged / rows > max(3 * share, share + 0.25):
        print(f"note: {flagged / rows:.1%} of the rows are flagged, where rows like the training ones are flagged "
              f"{share * 100:g}% of the time: does this data differ from the training data (a column's unit, "
              "source or period)?")


def _print_score_summary(args: argparse.Namespace, summary: object, engine: str = "") -> None:
    """What ``aekit anomaly score`` prints, whichever path scored (tables, series, images)."""
    written = "standard output" if args.out == STDIO else args.out
    print(f"scored {summary.rows} {getattr(summary, 'unit', 'rows')}{engine}, flagged {summary.flagged} as anomalies; "
          f"wrote {written}")
    _print_flagged_columns(summary, summary.rows, summary.flagged)
    for line in getattr(summary, "notices", []):
        print(f"note: {line}")
    if getattr(summary, "heatmaps", 0):
        from .image_scoring import OVERVIEW

        print(f"heat maps of the {summary.heatmaps} highest-scoring flagged images: {summary.heatmap_dir} "
              f"(all of them in one image: {Path(summary.heatmap_dir) / OVERVIEW})")
    if getattr(summary, "unseen_categories", None):
        print(f"unseen categories (encoded as none of the known ones): {_unseen(summary)}")


def _unseen(summary: object) -> str:
    """Each column's count of unseen categories, with a few of them and of the model's own
    (a format that differs shows at once: 1 and 0 where the model knows False and True)."""
    from ...data.preprocess import UNSEEN_EXAMPLES  # imported once scored: pandas is loaded by then

    parts = []
    for col, n in summary.unseen_categories.items():
        seen, known = summary.unseen_examples.get(col, []), summary.known_categories.get(col, [])
        listed = ", ".join(map(repr, known[:UNSEEN_EXAMPLES])) + (", ..." if len(known) > UNSEEN_EXAMPLES else "")
        examples = f" ({', '.join(map(repr, seen))}; the model knows {listed})" if seen else ""
        parts.append(f"{col!r} {n:,} rows{examples}")
    return "; ".join(parts)
