"""``aekit cluster|hash|vq <verb>``: the discrete-code applications' command-line verbs
(parsing only)."""
from __future__ import annotations

import argparse


from ...cliargs import application, drop_cols_flag, float_in, image_size_flag, int_at_least, report, training_flags

SOURCE_HELP = ("data: a folder of PNG/JPEG (class subfolders become labels), an .npz, 'digits', 'lfw_subset', "
               "or a table (.csv/.tsv/.parquet; every column a feature but --label-col and --id-col)")
MODEL_SOURCE_HELP = ("data: a folder of PNG/JPEG, an .npz, 'digits', 'lfw_subset', or a table (.csv/.tsv/.parquet) "
                     "holding the model's columns (others are left out, with a note; --id-col names the rows)")


def column_flags(parser: argparse.ArgumentParser, label: str | None) -> None:
    """``--id-col`` (and on fit verbs, where ``label`` says what labels do, ``--label-col``,
    ``--drop-cols`` and ``--impute``) for tables."""
    if label:
        parser.add_argument("--label-col", help=f"tables: a label column, left out of the features; {label}")
        drop_cols_flag(parser)
        parser.add_argument("--impute", choices=["median"],
                            help="tables: fill NaN/inf with the training median instead of failing")
    parser.add_argument("--id-col", help="tables: an ID column, left out of the features; it names the rows in "
                                         "outputs (default row_0, row_1, ...)")


def register(sub: argparse._SubParsersAction) -> None:
    verbs = application(sub, "cluster", help="unsupervised classification of images or table rows",
                        description="Cluster images or table rows with an autoencoder (codes + t-SNE or UMAP "
                                    "+ k-means); labels, where the source has them, are only used to score.",
                        run=run_cluster)
    f = verbs.add_parser("fit", aliases=["train"], help="cluster a source and save the model")
    f.add_argument("data", help=SOURCE_HELP)
    f.add_argument("--k", type=int_at_least(2, 10_000), required=True, help="number of clusters")
    f.add_argument("--out", required=True, help="model directory to write")
    f.add_argument("--code-size", type=int_at_least(1, 4096), default=32)
    f.add_argument("--embedding", choices=["auto", "umap", "tsne", "none"], default="auto",
                   help="the layout of the codes that k-means clusters (default auto: t-SNE below 10,000 "
                        "samples, UMAP from there)")
    f.add_argument("--clip", type=float_in(1e-3, 1e6), default=3.0,
                   help="tables: limit each scaled column to +-CLIP standard deviations (default 3; 1e6 for "
                        "no limit), so the rare values of a mostly-constant column do not split clusters")
    column_flags(f, "the clusters are scored against it, never fitted to it")
    image_size_flag(f)
    training_flags(f, epochs=None, epochs_default="100 on small data, about 5,000 steps on large")
    p = verbs.add_parser("predict", help="assign samples to the clusters of a fitted model")
    p.add_argument("data", help=MODEL_SOURCE_HELP)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, help="CSV to write (sample, cluster)")
    column_flags(p, None)

    verbs = application(sub, "hash", help="binary codes for retrieval (Hamming search)",
                        description="Binary codes of images or table rows, packed into bytes, searched by "
                                    "Hamming distance.", run=run_hash)
    f = verbs.add_parser("fit", aliases=["train"], help="learn the binary codes and save the model")
    f.add_argument("data", help=SOURCE_HELP)
    f.add_argument("--bits", type=int_at_least(1, 4096), default=32)
    f.add_argument("--out", required=True)
    f.add_argument("--health-png", help="PNG of the bit health per epoch")
    column_flags(f, "not used")
    image_size_flag(f)
    training_flags(f, epochs=100)
    e = verbs.add_parser("encode", help="packed codes of a source into an .npz database")
    e.add_argument("data", help=MODEL_SOURCE_HELP)
    e.add_argument("--model", required=True)
    e.add_argument("--out", required=True, help=".npz to write (codes, names)")
    column_flags(e, None)
    s = verbs.add_parser("search", help="the nearest database codes of query samples")
    s.add_argument("queries", help=MODEL_SOURCE_HELP)
    s.add_argument("--model", required=True)
    s.add_argument("--database", required=True, help=".npz from 'aekit hash encode'")
    s.add_argument("-k", type=int_at_least(1, 100_000), default=10)
    s.add_argument("--out", required=True, help="CSV to write (query, rank, match, distance)")
    column_flags(s, None)
    b = verbs.add_parser("bits", help="PNG of what each bit means: flip it and decode")
    b.add_argument("image", help="an image file or SOURCE:INDEX (digits:0)")
    b.add_argument("--model", required=True)
    b.add_argument("--out", required=True)

    verbs = application(sub, "vq", help="VQ-VAE: images (or rows) to tokens of a learned codebook",
                        description="Train a VQ-VAE (printing its PSNR, bits per sample and codebook health), turn "
                                    "images or rows into its tokens, and tokens back into images.", run=run_vq)
    t = verbs.add_parser("train", help="train a VQ-VAE and save it")
    t.add_argument("data", help=SOURCE_HELP)
    t.add_argument("--out", required=True)
    t.add_argument("--codebook-size", type=int_at_least(2, 65_536), default=64)
    t.add_argument("--positions", type=int_at_least(1, 4096), default=4, help="tokens per sample")
    t.add_argument("--codebooks", type=int_at_least(1, 64), default=1, help="codebooks per token (residual quantization)")
    t.add_argument("--codebook-png", help="PNG of the decoded codebook entries")
    t.add_argument("--health-png", help="PNG of the codebook health per epoch")
    column_flags(t, "not used")
    image_size_flag(t)
    training_flags(t, epochs=100)
    e = verbs.add_parser("encode", help="the tokens of a source into an .npz")
    e.add_argument("data", help=MODEL_SOURCE_HELP)
    e.add_argument("--model", required=True, help="model directory from 'aekit vq train'")
    e.add_argument("--out", required=True, help=".npz to write (tokens [N, positions, codebooks], names)")
    column_flags(e, None)
    d = verbs.add_parser("decode", help="images from the tokens of an .npz (a PNG grid)")
    d.add_argument("tokens", help=".npz from 'aekit vq encode' (or any with a 'tokens' array)")
    d.add_argument("--model", required=True, help="model directory from 'aekit vq train' (an image model)")
    d.add_argument("--out", required=True, help="PNG grid to write (of the first 256 images)")
    d.add_argument("--npz", help="also write the images to this .npz (array 'images', [N, C, H, W] in [0, 1])")


def _verbose(args: argparse.Namespace) -> int:
    return 0 if getattr(args, "quiet", True) else 1


def run_cluster(args: argparse.Namespace) -> int:
    import numpy as np

    from . import jobs

    if args.verb in ("fit", "train"):
        model, scores = jobs.cluster_fit(args.data, args.out, args.k, resume=args.resume, image_size=args.image_size,
                                         label_col=args.label_col, id_col=args.id_col, drop_cols=args.drop_cols,
                                         code_size=args.code_size, embedding=args.embedding, clip=args.clip,
                                         impute=args.impute, epochs=args.epochs or "auto", random_state=args.seed,
                                         verbose=_verbose(args))
        sizes = np.bincount(model.labels_, minlength=args.k)
        report(f"{len(model.labels_)} samples in {args.k} clusters of sizes {sizes.tolist()}; model written to {args.out}")
        if scores:
            report("against the source's labels (not used to fit): " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    else:
        labels = jobs.cluster_predict(args.data, args.model, args.out, id_col=args.id_col)
        print(f"assigned {len(labels)} samples; wrote {args.out}")
    return 0


def run_hash(args: argparse.Namespace) -> int:
    from . import jobs

    if args.verb in ("fit", "train"):
        hasher = jobs.hash_fit(args.data, args.out, args.health_png, resume=args.resume, image_size=args.image_size,
                               label_col=args.label_col, id_col=args.id_col, drop_cols=args.drop_cols,
                               n_bits=args.bits, impute=args.impute,
                               epochs=args.epochs, random_state=args.seed, verbose=_verbose(args))
        health = hasher.code_health_
        report(f"learned {args.bits}-bit codes ({health['bits_used']} bits in use, {health['codes_used']} distinct "
               f"codes); model written to {args.out}")
    elif args.verb == "encode":
        codes = jobs.hash_encode(args.data, args.model, args.out, id_col=args.id_col)
        print(f"wrote {len(codes)} codes of {codes.shape[1]} bytes to {args.out}")
    elif args.verb == "search":
        frame = jobs.hash_search(args.queries, args.model, args.database, args.out, args.k, id_col=args.id_col)
        print(f"searched {frame['query'].nunique()} queries; wrote {args.out}")
    else:
        jobs.hash_bit_flips(args.model, args.image, args.out)
        print(f"wrote {args.out}")
    return 0


def run_vq(args: argparse.Namespace) -> int:
    from . import jobs

    if args.verb == "encode":
        tokens = jobs.vq_encode(args.data, args.model, args.out, id_col=args.id_col)
        print(f"wrote the tokens of {len(tokens)} samples ({tokens.shape[1]} positions x {tokens.shape[2]} "
              f"codebooks) to {args.out}")
        return 0
    if args.verb == "decode":
        images = jobs.vq_decode(args.tokens, args.model, args.out, args.npz)
        drawn = f"the first {jobs.GRID_MAX} of them " if len(images) > jobs.GRID_MAX else ""
        print(f"decoded {len(images)} images; wrote {drawn}to {args.out}" + (f", all to {args.npz}" if args.npz else ""))
        return 0
    model, health = jobs.vq_train(args.data, args.out, args.codebook_png, args.health_png, resume=args.resume,
                                  image_size=args.image_size, label_col=args.label_col, id_col=args.id_col, drop_cols=args.drop_cols,
                                  codebook_size=args.codebook_size, positions=args.positions,
                                  codebooks=args.codebooks, impute=args.impute, epochs=args.epochs,
                                  random_state=args.seed,
                                  verbose=_verbose(args))
    report(f"{model.bits_:.0f} bits per sample, PSNR {health['psnr']:.2f} dB; codes used "
           f"{health['codes_used']}/{args.codebook_size}, perplexity {health['perplexity']:.1f}, "
           f"dead-code restarts {health['dead_restarts']}; model written to {args.out}")
    return 0
