"""``aekit <application> <verb>``: argument parsing and calls into the Python API, no logic.

User errors (bad data, bad model directory, bad option) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from ._version import __version__
from .distributed import is_main_process
from .errors import AekitError


def _training_flags(parser: argparse.ArgumentParser, epochs: int, resume: bool = True) -> None:
    """The options every training verb shares."""
    parser.add_argument("--epochs", type=int, default=epochs,
                        help=f"maximum epochs (default {epochs}; early stopping ends sooner)")
    parser.add_argument("--seed", type=int, default=0)
    if resume:
        parser.add_argument("--resume", action="store_true", help="continue an interrupted training from its checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _anomaly_parser(sub: argparse._SubParsersAction) -> None:
    anomaly = sub.add_parser("anomaly", help="anomaly detection on tables and images: train on normal data, score new data",
                             description="Anomaly detection on CSV/Parquet tables and on images.")
    verbs = anomaly.add_subparsers(dest="verb", required=True, metavar="VERB")

    def columns(p: argparse.ArgumentParser, label_help: str) -> None:
        p.add_argument("--label-col", help=label_help)
        p.add_argument("--id-col", help="an ID column: excluded from features, copied to outputs")

    t = verbs.add_parser("train", help="train a detector on a table or on images",
                         description="Train a detector on a table (CSV or Parquet with a header) or on images "
                                     "(a folder of PNG/JPEG files, an .npz array, or 'digits' / 'lfw_subset') "
                                     "and save it as a model directory.")
    t.add_argument("data", help="training table (.csv, .tsv, .parquet) or image source")
    t.add_argument("--out", required=True, help="model directory to write")
    columns(t, "label column (excluded from features)")
    t.add_argument("--normal-value", help="train only on rows whose label equals this value (e.g. 'normal.' or 0); "
                   "for an image folder with class subfolders, the normal class")
    t.add_argument("--threshold", help="'fpr:0.01' (false-alarm rate on held-out clean rows), "
                   "'contamination:0.05', or a score; default: --contamination")
    t.add_argument("--contamination", type=float, default=0.1, help="expected anomaly share (default 0.1)")
    t.add_argument("--categorical", help="comma-separated categorical columns (default: non-numeric columns)")
    t.add_argument("--log-columns", help="comma-separated heavy-tailed columns to log-transform (e.g. Amount)")
    t.add_argument("--impute", choices=["median"], help="fill NaN/inf with the training median instead of failing")
    t.add_argument("--vae", action="store_true", help="a variational autoencoder (Gaussian code)")
    t.add_argument("--n-estimators", type=int, default=3, help="autoencoders in the seed ensemble (default 3)")
    _training_flags(t, epochs=100)

    s = verbs.add_parser("score", help="score a table (streamed in chunks) or images",
                         description="Score a table in chunks (bounded memory) and write a CSV with score, "
                                     "is_anomaly and top_features; or score images and write a CSV plus a "
                                     "heat-map PNG for each flagged image.")
    s.add_argument("data")
    s.add_argument("--model", required=True, help="model directory from 'aekit anomaly train'")
    s.add_argument("--out", required=True, help="output CSV")
    columns(s, "label column to copy to the output (not a feature)")
    s.add_argument("--top-k", type=int, default=3, help="top contributing features per row (default 3)")
    s.add_argument("--chunk-rows", type=int, default=100_000, help="rows per chunk (default 100000)")
    s.add_argument("--heatmaps", help="images: folder for the flagged images' heat maps (default OUT_heatmaps/)")
    s.add_argument("--quiet", action="store_true")

    for verb, label_required, help_ in (
        ("eval", True, "metrics against labels, plus the report PNGs"),
        ("report", False, "the report PNGs (scores histogram, top anomalies' contributions; ROC with labels)"),
    ):
        e = verbs.add_parser(verb, help=help_, description=help_[0].upper() + help_[1:] + ".")
        e.add_argument("data")
        e.add_argument("--model", required=True)
        e.add_argument("--label-col", required=label_required, help="label column")
        e.add_argument("--id-col", help="ID column (names the rows in the report)")
        e.add_argument("--normal-value", help="the label value of normal rows (default: labels are 0/1)")
        e.add_argument("--report-dir", default="report", help="where the PNGs go (default ./report)")
        e.add_argument("--quiet", action="store_true")

    d = verbs.add_parser("demo", help="train and evaluate on the bundled breast-cancer data",
                         description="Train on 60%% of the benign rows of scikit-learn's breast cancer data; "
                                     "test on the rest plus every malignant row; print metrics, write the report.")
    d.add_argument("--out", default="demo_output")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true")


def _generate_parser(sub: argparse._SubParsersAction) -> None:
    generate = sub.add_parser("generate", help="a VAE on images: sample new images, interpolate between two",
                              description="The decoder as a generator: train a VAE on images, then decode prior "
                                          "samples (new images) or the path between two images' codes.")
    verbs = generate.add_subparsers(dest="verb", required=True, metavar="VERB")
    t = verbs.add_parser("train", help="train a VAE on images and save it",
                         description="Train a VAE on images (a folder of PNG/JPEG files, an .npz array, or "
                                     "'digits' / 'lfw_subset') and save it as a model directory.")
    t.add_argument("data", help="image source")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--class", dest="class_name", help="with class subfolders: train on this class only")
    t.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"), help="resize every image (default: keep)")
    t.add_argument("--architecture", choices=["conv", "mlp"], default="conv")
    t.add_argument("--code-size", type=int, default=16, help="latent dimensions (default 16)")
    t.add_argument("--prior", choices=["fitted", "learned"], default="fitted",
                   help="what samples are drawn from: a Gaussian mixture fit to the training images' codes after "
                        "training, its size chosen on held-out images (fitted, the default), or the prior "
                        "trained with the model (learned)")
    t.add_argument("--fitted-components", type=int, help="fix the fitted prior's size instead of choosing it")
    t.add_argument("--prior-components", type=int, default=50,
                   help="Gaussians in the prior mixture trained with the model; 0 for N(0, I) (default 50)")
    t.add_argument("--likelihood", choices=["gaussian", "bernoulli"], default="gaussian")
    t.add_argument("--beta", type=float, default=1.0, help="KL weight (default 1)")
    _training_flags(t, epochs=300)

    s = verbs.add_parser("sample", help="decode prior samples into a PNG grid",
                         description="Decode N prior samples into a PNG grid (and optionally an .npz array).")
    s.add_argument("--model", required=True, help="model directory from 'aekit generate train'")
    s.add_argument("-n", type=int, default=64, help="number of images (default 64)")
    s.add_argument("--out", required=True, help="PNG to write")
    s.add_argument("--npz", help="also write the images to this .npz (array 'images', [N, C, H, W] in [0, 1])")
    s.add_argument("--seed", type=int, default=0, help="the same seed gives the same images")

    i = verbs.add_parser("interpolate", help="decode the straight path between two images' codes",
                         description="Encode images A and B, decode codes on the line between them, and write "
                                     "the strip (A, the path, B) as a PNG. A and B are image files or "
                                     "SOURCE:INDEX, e.g. digits:0 digits:10.")
    i.add_argument("a", metavar="A")
    i.add_argument("b", metavar="B")
    i.add_argument("--model", required=True)
    i.add_argument("--out", required=True, help="PNG to write")
    i.add_argument("--steps", type=int, default=10, help="decoded images on the path, ends included (default 10)")


def _run_generate(args: argparse.Namespace) -> int:
    from .apps.generate import jobs

    if args.verb == "train":
        gen = jobs.train_images(
            args.data, args.out, class_name=args.class_name, resume=args.resume, image_size=args.image_size,
            architecture=args.architecture, code_size=args.code_size, prior=args.prior,
            fitted_components=args.fitted_components, prior_components=args.prior_components,
            likelihood=args.likelihood, beta=args.beta, epochs=args.epochs, random_state=args.seed,
            verbose=0 if args.quiet else 1)
        if is_main_process():
            spec = gen.image_spec_
            prior = (f"; prior: {gen.fitted_prior_.n_components} Gaussians fit to the training codes"
                     if gen.fitted_prior_ is not None else "")
            print(f"trained a VAE on {spec.channels}x{spec.height}x{spec.width} images for "
                  f"{len(gen.training_history_)} epochs{prior}; model written to {args.out}")
    elif args.verb == "sample":
        images = jobs.sample_grid(args.model, args.n, args.out, seed=args.seed, npz=args.npz)
        print(f"wrote {len(images)} samples to {args.out}" + (f" and {args.npz}" if args.npz else ""))
    elif args.verb == "interpolate":
        jobs.interpolation_strip(args.model, args.a, args.b, args.out, steps=args.steps)
        print(f"wrote the interpolation strip to {args.out}")
    return 0


def _codes_parser(sub: argparse._SubParsersAction) -> None:
    image_help = "image source: a folder of PNG/JPEG (class subfolders become labels), an .npz, 'digits', 'lfw_subset'"
    cluster = sub.add_parser("cluster", help="unsupervised classification of images",
                             description="Cluster images with an autoencoder (codes + t-SNE + k-means); labels, "
                                         "where the source has them, are only used to score.")
    verbs = cluster.add_subparsers(dest="verb", required=True, metavar="VERB")
    f = verbs.add_parser("fit", help="cluster images and save the model")
    f.add_argument("data", help=image_help)
    f.add_argument("--k", type=int, required=True, help="number of clusters")
    f.add_argument("--out", required=True, help="model directory to write")
    f.add_argument("--code-size", type=int, default=32)
    _training_flags(f, epochs=100, resume=False)
    p = verbs.add_parser("predict", help="assign images to the clusters of a fitted model")
    p.add_argument("data", help=image_help)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, help="CSV to write (image, cluster)")

    hashing = sub.add_parser("hash", help="binary codes for retrieval (Hamming search)",
                             description="Binary codes of images, packed into bytes, searched by Hamming distance.")
    verbs = hashing.add_subparsers(dest="verb", required=True, metavar="VERB")
    f = verbs.add_parser("fit", help="learn the binary codes and save the model")
    f.add_argument("data", help=image_help)
    f.add_argument("--bits", type=int, default=32)
    f.add_argument("--out", required=True)
    f.add_argument("--health-png", help="PNG of the bit health per epoch")
    _training_flags(f, epochs=100, resume=False)
    e = verbs.add_parser("encode", help="packed codes of images into an .npz database")
    e.add_argument("data", help=image_help)
    e.add_argument("--model", required=True)
    e.add_argument("--out", required=True, help=".npz to write (codes, names)")
    s = verbs.add_parser("search", help="the nearest database codes of query images")
    s.add_argument("queries", help=image_help)
    s.add_argument("--model", required=True)
    s.add_argument("--database", required=True, help=".npz from 'aekit hash encode'")
    s.add_argument("-k", type=int, default=10)
    s.add_argument("--out", required=True, help="CSV to write (query, rank, match, distance)")
    b = verbs.add_parser("bits", help="PNG of what each bit means: flip it and decode")
    b.add_argument("image", help="an image file or SOURCE:INDEX (digits:0)")
    b.add_argument("--model", required=True)
    b.add_argument("--out", required=True)

    vq = sub.add_parser("vq", help="VQ-VAE: images to tokens of a learned codebook",
                        description="Train a VQ-VAE; print its PSNR, bits per image and codebook health.")
    verbs = vq.add_subparsers(dest="verb", required=True, metavar="VERB")
    t = verbs.add_parser("train", help="train a VQ-VAE and save it")
    t.add_argument("data", help=image_help)
    t.add_argument("--out", required=True)
    t.add_argument("--codebook-size", type=int, default=64)
    t.add_argument("--positions", type=int, default=4, help="tokens per image")
    t.add_argument("--codebooks", type=int, default=1, help="codebooks per token (residual quantization)")
    t.add_argument("--codebook-png", help="PNG of the decoded codebook entries")
    t.add_argument("--health-png", help="PNG of the codebook health per epoch")
    _training_flags(t, epochs=100, resume=False)


def _run_codes(args: argparse.Namespace) -> int:
    from .apps.codes import jobs

    verbose = 0 if getattr(args, "quiet", True) else 1
    if args.application == "cluster" and args.verb == "fit":
        model, scores = jobs.cluster_fit(args.data, args.out, args.k, code_size=args.code_size, epochs=args.epochs,
                                         random_state=args.seed, verbose=verbose)
        sizes = np.bincount(model.labels_, minlength=args.k)
        print(f"{len(model.labels_)} images in {args.k} clusters of sizes {sizes.tolist()}; model written to {args.out}")
        if scores:
            print("against the source's labels (not used to fit): " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    elif args.application == "cluster":
        labels = jobs.cluster_predict(args.data, args.model, args.out)
        print(f"assigned {len(labels)} images; wrote {args.out}")
    elif args.application == "hash" and args.verb == "fit":
        hasher = jobs.hash_fit(args.data, args.out, args.health_png, n_bits=args.bits, epochs=args.epochs,
                               random_state=args.seed, verbose=verbose)
        bits_used = [r["bits_used"] for r in hasher.training_history_ if "bits_used" in r][-1]
        print(f"learned {args.bits}-bit codes ({bits_used} bits in use); model written to {args.out}")
    elif args.application == "hash" and args.verb == "encode":
        codes = jobs.hash_encode(args.data, args.model, args.out)
        print(f"wrote {len(codes)} codes of {codes.shape[1]} bytes to {args.out}")
    elif args.application == "hash" and args.verb == "search":
        frame = jobs.hash_search(args.queries, args.model, args.database, args.out, args.k)
        print(f"searched {frame['query'].nunique()} queries; wrote {args.out}")
    elif args.application == "hash":
        jobs.hash_bit_flips(args.model, args.image, args.out)
        print(f"wrote {args.out}")
    else:
        model, health = jobs.vq_train(args.data, args.out, args.codebook_png, args.health_png,
                                      codebook_size=args.codebook_size, positions=args.positions,
                                      codebooks=args.codebooks, epochs=args.epochs, random_state=args.seed,
                                      verbose=verbose)
        print(f"{model.bits_:.0f} bits per image, PSNR {health['psnr']:.2f} dB; codes used "
              f"{health['codes_used']}/{args.codebook_size}, perplexity {health['perplexity']:.1f}, "
              f"dead-code restarts {health['dead_restarts']}; model written to {args.out}")
    return 0


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _run_anomaly(args: argparse.Namespace) -> int:
    from .apps.anomaly import jobs

    verbose = 0 if args.quiet else 1
    if args.verb == "train":
        params = dict(contamination=args.contamination, threshold=args.threshold, impute=args.impute,
                      n_estimators=args.n_estimators, epochs=args.epochs, random_state=args.seed, verbose=verbose)
        if args.categorical:
            params["categorical"] = _split(args.categorical)
        if args.log_columns:
            params["log_columns"] = _split(args.log_columns)
        det = jobs.train_file(args.data, args.out, label_col=args.label_col, normal_value=args.normal_value,
                              id_col=args.id_col, vae=args.vae, resume=args.resume, **params)
        if not is_main_process():  # under torchrun, rank 0 reports for all
            return 0
        shape = (f"{det.n_features_in_} columns" if hasattr(det, "n_features_in_")
                 else "images of {channels}x{height}x{width}".format(**det.image_spec_.to_dict()))
        print(f"trained on {len(det.decision_scores_)} rows, {shape}; "
              f"threshold {det.threshold_:.4g} ({det.threshold_rule_.describe()})")
        print(f"model written to {args.out}")
    elif args.verb == "score":
        summary = jobs.score_file(args.data, args.model, args.out, id_col=args.id_col, label_col=args.label_col,
                                  top_k=args.top_k, chunksize=args.chunk_rows, verbose=verbose,
                                  heatmap_dir=args.heatmaps)
        print(f"scored {summary.rows} rows, flagged {summary.flagged} as anomalies; wrote {args.out}")
        if summary.heatmap_dir and summary.flagged:
            print(f"heat maps of the flagged images: {summary.heatmap_dir}")
        if summary.unseen_categories:
            print(f"unseen categories (encoded as none of the known ones): {summary.unseen_categories}")
    elif args.verb in ("eval", "report"):
        analysis = jobs.analyse_file(args.data, args.model, args.report_dir, label_col=args.label_col,
                                     normal_value=args.normal_value, id_col=args.id_col, verbose=verbose)
        print(f"model threshold: {analysis.threshold_rule}")
        if analysis.metrics is not None:
            print("\n".join(analysis.metrics.lines()))
        else:
            print(f"scored {len(analysis.scores)} rows, flagged {(analysis.scores > analysis.threshold).sum()} "
                  f"(threshold {analysis.threshold:.4g})")
        print("report: " + ", ".join(str(p) for p in analysis.report_paths))
    elif args.verb == "demo":
        analysis = jobs.run_demo(args.out, seed=args.seed, verbose=verbose)
        print("aekit demo: breast cancer (benign = normal), AnomalyDetector defaults, threshold fpr:0.05")
        print("\n".join(analysis.metrics.lines()))
        print("report: " + ", ".join(str(p) for p in analysis.report_paths))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aekit", description="Autoencoders made useful.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="application", required=True, metavar="APPLICATION")
    _anomaly_parser(sub)
    _generate_parser(sub)
    _codes_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.application == "anomaly":
            return _run_anomaly(args)
        if args.application == "generate":
            return _run_generate(args)
        if args.application in ("cluster", "hash", "vq"):
            return _run_codes(args)
    except (AekitError, ValueError) as exc:
        # User errors: one line, no traceback. ValueError covers bad option values.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"aekit: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aekit: interrupted (rerun with --resume to continue training)", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
