"""``aekit generate <verb>``: the VAE generator's command-line verbs (parsing only)."""
from __future__ import annotations

import argparse

from ...cliargs import application, float_in, image_size_flag, int_at_least, report, training_flags


def register(sub: argparse._SubParsersAction) -> None:
    verbs = application(sub, "generate", help="a generator of images: sample new images, interpolate between two",
                        description="The decoder as a generator: train a VAE (or a VQ-VAE with a transformer "
                                    "prior over its tokens) on images, then decode prior samples (new images) "
                                    "or the path between two images' codes.", run=run)
    t = verbs.add_parser("train", help="train a generator on images and save it",
                         description="Train a generator on images (a folder of PNG/JPEG files, an .npz array, or "
                                     "'digits' / 'lfw_subset') and save it as a model directory.")
    t.add_argument("data", help="image source")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--class", dest="class_name", help="with class subfolders: train on this class only")
    image_size_flag(t)
    t.add_argument("--generator", choices=["vae", "tokens"], default="vae",
                   help="vae: a VAE with a Gaussian code, its images sharpened by a token refiner (the default, "
                        "the better on MNIST); tokens: a VQ-VAE whose code is a grid of codebook tokens, with a "
                        "transformer prior over the grids (sharp, but its prior needs long training)")
    t.add_argument("--codebook-size", type=int_at_least(2, 65_536), default=64,
                   help="the token grids' codebook entries, of the refiner (vae) or the model (tokens) (default 64)")
    t.add_argument("--prior-epochs", type=int_at_least(1, 100_000),
                   help="tokens: epochs of the transformer prior (default: about 2,000 steps, at least 10 epochs)")
    t.add_argument("--temperature", type=float_in(0.01, 10), default=1.0,
                   help="tokens: sampling temperature of the prior (default 1; lower: likelier, less varied images)")
    t.add_argument("--architecture", choices=["conv", "mlp"], default="conv", help="vae: the network")
    t.add_argument("--code-size", type=int_at_least(1, 4096), default=16, help="vae: latent dimensions (default 16)")
    t.add_argument("--prior", choices=["fitted", "learned"], default="fitted",
                   help="vae: what samples are drawn from: a Gaussian mixture fit to the training images' codes after "
                        "training, its size chosen on held-out images (fitted, the default), or the prior "
                        "trained with the model (learned)")
    t.add_argument("--fitted-components", type=int_at_least(1, 1000),
                   help="vae: fix the fitted prior's size instead of choosing it")
    t.add_argument("--prior-components", type=int_at_least(0, 10_000), default=50,
                   help="vae: Gaussians in the prior mixture trained with the model; 0 for N(0, I) (default 50)")
    t.add_argument("--likelihood", choices=["gaussian", "bernoulli"], default="gaussian", help="vae")
    t.add_argument("--beta", type=float_in(0, 1000), default=1.0, help="vae: KL weight (default 1)")
    t.add_argument("--refine-steps", type=int_at_least(0, 20), default=3,
                   help="vae: passes of the token refiner, a VQ-VAE that redraws each decoded image from codebook "
                        "patches (sharper images; default 3, 0: no refiner)")
    training_flags(t, epochs=None, epochs_default="300 for vae; for tokens about 2,000 steps, at least 5 epochs")

    s = verbs.add_parser("sample", help="decode prior samples into a PNG grid",
                         description="Decode N prior samples into a PNG grid (and optionally an .npz array, or "
                                     "a folder of one PNG per image, as FID tools read them).")
    s.add_argument("--model", required=True, help="model directory from 'aekit generate train'")
    s.add_argument("-n", type=int_at_least(1, 10_000), default=64, help="number of images (default 64, at most 10000)")
    s.add_argument("--out", required=True, help="PNG to write")
    s.add_argument("--npz", help="also write the images to this .npz (array 'images', [N, C, H, W] in [0, 1])")
    s.add_argument("--png-dir", help="also write each image as a PNG file in this folder (sample_00000.png, ...; "
                                     "a new folder, or one this command wrote, which it replaces whole)")
    s.add_argument("--seed", type=int_at_least(0), default=0, help="the same seed gives the same images")

    i = verbs.add_parser("interpolate", help="decode the straight path between two images' codes",
                         description="Encode images A and B, decode codes on the line between them, and write "
                                     "the strip (A, the path, B) as a PNG. A and B are image files or "
                                     "SOURCE:INDEX, e.g. digits:0 digits:10.")
    i.add_argument("a", metavar="A")
    i.add_argument("b", metavar="B")
    i.add_argument("--model", required=True)
    i.add_argument("--out", required=True, help="PNG to write")
    i.add_argument("--steps", type=int_at_least(2, 100), default=10,
                   help="decoded images on the path, ends included (default 10, at most 100)")


def run(args: argparse.Namespace) -> int:
    from . import jobs

    if args.verb == "train":
        common = dict(class_name=args.class_name, resume=args.resume, image_size=args.image_size,
                      random_state=args.seed, verbose=0 if args.quiet else 1)
        if args.epochs is not None:
            common["epochs"] = args.epochs
        if args.generator == "tokens":
            if args.prior_epochs is not None:
                common["prior_epochs"] = args.prior_epochs
            gen = jobs.train_images(args.data, args.out, generator="tokens", codebook_size=args.codebook_size,
                                    temperature=args.temperature, **common)
            what = f"a VQ-VAE ({gen.codebook_size} tokens) and its token prior"
        else:
            gen = jobs.train_images(
                args.data, args.out, architecture=args.architecture, code_size=args.code_size, prior=args.prior,
                fitted_components=args.fitted_components, prior_components=args.prior_components,
                likelihood=args.likelihood, beta=args.beta, refine_steps=args.refine_steps,
                codebook_size=args.codebook_size, **common)
            what = f"a VAE for {len(gen.training_history_)} epochs"
            if gen.fitted_prior_ is not None:
                what += f"; prior: {gen.fitted_prior_.n_components} Gaussians fit to the training codes"
        spec = gen.image_spec_
        report(f"trained {what} on {spec.channels}x{spec.height}x{spec.width} images; model written to {args.out}")
    elif args.verb == "sample":
        images = jobs.sample_grid(args.model, args.n, args.out, seed=args.seed, npz=args.npz, png_dir=args.png_dir)
        also = [f for f in (args.npz, args.png_dir and f"{args.png_dir}/") if f]
        print(f"wrote {len(images)} samples to {args.out}" + "".join(f" and {f}" for f in also))
    elif args.verb == "interpolate":
        jobs.interpolation_strip(args.model, args.a, args.b, args.out, steps=args.steps)
        print(f"wrote the interpolation strip to {args.out}")
    return 0
