"""``aekit compress train|encode|decode|eval`` (parsing only)."""
from __future__ import annotations

import argparse

from ...cliargs import application, int_at_least, report, training_flags


def register(sub: argparse._SubParsersAction) -> None:
    verbs = application(sub, "compress", help="a learned image codec: encode to a small .aek file, decode it back",
                        description="The encoder as a compressor and the decoder as a decompressor: a "
                                    "hyperprior codec with a checkerboard context model and quality levels 1 "
                                    "(smallest) to 10.", run=run)
    t = verbs.add_parser("train", help="train a codec on photos (every quality level at once)",
                         description="Train on every image under DATA (a folder of PNG/JPEG files).")
    t.add_argument("data")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--crop", type=int_at_least(64, 4096), default=256, help="training crop side (multiple of 64)")
    t.add_argument("--downsample", type=int_at_least(1, 16), default=1,
                   help="shrink each photo by this factor first (2 hides the artefacts of small, heavily "
                        "compressed JPEGs); default 1")
    t.add_argument("--context", choices=["checkerboard", "none"], default="checkerboard",
                   help="context model over the latents (default checkerboard: fewer bytes, two decoding passes)")
    t.add_argument("--init-model", help="fine-tune from this saved codec (same widths), e.g. a copy of the bundled one")
    t.add_argument("--device", default="cpu",
                   help="where training runs: cpu (default), cuda, cuda:N or mps; the model is saved for the CPU")
    training_flags(t, epochs=40)
    e = verbs.add_parser("encode", help="compress an image into an .aek file",
                         description="Compress IMAGE at --quality into OUT (.aek); prints the bits per pixel.")
    e.add_argument("image")
    e.add_argument("--quality", type=int_at_least(1), default=3,
                   help="1 (smallest) to the codec's best (10 for the bundled codec); default 3")
    e.add_argument("--refine", type=int_at_least(0, 10_000), default=0,
                   help="steps of encode-time refinement of the latents: fewer bytes at the same quality "
                        "for encoder time (10: about 4%% smaller at equal PSNR, ~0.8 s per step for a 768x512 "
                        "photo on 2 cores); "
                        "the file decodes as usual. Default 0")
    e.add_argument("--out", required=True, help=".aek file to write")
    e.add_argument("--model", help="model directory from 'aekit compress train' (default: the bundled codec)")
    d = verbs.add_parser("decode", help="decompress an .aek file into an image",
                         description="Decompress SOURCE (.aek) into OUT (.png, .bmp or .tif).")
    d.add_argument("source")
    d.add_argument("--out", required=True, help="lossless image file to write")
    d.add_argument("--model", help="the model directory that encoded it (default: the bundled codec)")
    v = verbs.add_parser("eval", help="bits per pixel and PSNR at every quality, against JPEG, WebP and AVIF",
                         description="Compress and decompress each IMAGE (a file, or a folder of them) at every "
                                     "quality level, and with "
                                     "Pillow's JPEG, WebP and AVIF (where Pillow has it) at qualities 5-95; print "
                                     "the mean bits per pixel (from the bytes written) and PSNR, and the BD-rates "
                                     "against each; --plot writes the rate-distortion plot.")
    v.add_argument("images", nargs="+")
    v.add_argument("--plot", help="write the rate-distortion plot to this PNG file")
    v.add_argument("--no-peers", "--no-jpeg", dest="no_peers", action="store_true",
                   help="leave out the JPEG, WebP and AVIF references")
    v.add_argument("--refine", type=int_at_least(0, 10_000), default=0,
                   help="encode with this many steps of refinement (see 'encode --refine'); default 0")
    v.add_argument("--model", help="model directory (default: the bundled codec)")
    v.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ... import marks
    from ...io import check_output_file
    from . import jobs

    if args.verb == "train":
        jobs.train_codec(args.data, args.out, resume=args.resume, epochs=args.epochs, crop=args.crop,
                         downsample=args.downsample, context=args.context, init_model=args.init_model,
                         device=args.device, random_state=args.seed, verbose=0 if args.quiet else 1)
        report(f"codec written to {args.out}")
    elif args.verb == "encode":
        out, rate = jobs.encode_file(args.image, args.out, args.quality, args.model, refine=args.refine)
        print(f"wrote {out}: {rate:.3f} bits per pixel")
    elif args.verb == "decode":
        print(f"wrote {jobs.decode_file(args.source, args.out, args.model)}")
    else:
        if args.plot:  # a bad plot path is refused before the work, not after
            check_output_file(args.plot, marks.FIGURE, inputs=args.images, suffixes=(".png",), option="--plot")
        rows = jobs.evaluate(args.images, args.model, peers=not args.no_peers, refine=args.refine,
                             progress=not args.quiet)
        print("codec  quality  bpp     PSNR (dB)")
        for row in rows:
            print(f"{row['codec']:<5}  {row['quality']:>7}  {row['bpp']:.3f}  {row['psnr']:.2f}")
        for line in jobs.bd_rate_lines(rows):
            report(line)
        if args.plot:
            report(f"wrote {jobs.rd_plot(rows, args.plot, inputs=args.images)}")
    return 0
