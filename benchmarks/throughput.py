"""Scoring throughput and memory.

1. In memory: score a 1,000,000-row, 30-feature table with aekit's default AnomalyDetector
   and with PyOD's AutoEncoder (its defaults) in the same run; print rows/s.
2. Streaming: `aekit anomaly score` on a CSV of --file-gb gigabytes (default: a quarter of
   this machine's RAM), in a subprocess; print its peak resident memory next to the file size.
3. Images (issue 18): a folder of --images 32x32 RGB PNGs (random crops of the shared
   photos) and an .npz of as many 28x28 MNIST test images, scored by the default
   ImageAnomalyDetector (trained on 2,000 other images of the same kind): Pillow's bare decode
   of the folder, aekit's streamed decode alone, scoring alone (images in memory), and end to
   end (`jobs.score_file`, what `aekit anomaly score` runs: decode + score + CSV + 20 heat
   maps), with the end-to-end process's peak memory in a subprocess (aekit byte-compiled
   first, as an installed wheel is).
4. Start-up (issue 34): what a new `aekit` process costs before and while it scores, each
   CLI row beside its in-process twin (`jobs.score_file` on a detector already loaded),
   with aekit byte-compiled first, as an installed wheel is:
   `aekit --help` and `--version`; scoring one row and one image (the fixed cost); 3,000
   grey 32x32 PNGs (scikit-learn's digits, enlarged; the model trained on 150 ones); a
   1,000,000-row CSV of 30 columns scored to CSV.

    python benchmarks/throughput.py                          # all parts
    python benchmarks/throughput.py --rows 0 --file-gb 0 --images 0 --startup   # start-up only
    python benchmarks/throughput.py --file-gb 0 --images 0   # in-memory tables only
    python benchmarks/throughput.py --rows 0 --file-gb 0     # images only
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, Timer, photo_tiles, table  # noqa: E402


# runs the CLI and prints its peak resident memory: VmHWM, the process's own high-water mark
# (ru_maxrss would start from the parent's peak, which a child inherits across fork and exec)
PEAK_RSS_CLI = ("import re, sys; from aekit.cli import main; rc = main(sys.argv[1:]); "
                "kb = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
                "print('PEAK_RSS_MB', int(kb) / 1024); sys.exit(rc)")


def make_table(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 5)) @ rng.normal(size=(5, d)) + 0.1 * rng.normal(size=(n, d))).astype(np.float32)


def median_seconds(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        with Timer() as t:
            fn()
        times.append(t.seconds)
    return float(np.median(times))


def in_memory(rows: int, train_rows: int, pyod_rows: int) -> list[list[str]]:
    from aekit import AnomalyDetector

    X = make_table(rows, 30)
    Xtrain = make_table(train_rows, 30, seed=1)
    results = []
    for label, kw in (("aekit AnomalyDetector (defaults: 1 autoencoder + local and histogram terms)", {}),
                      ("aekit AnomalyDetector (histogram_weight=0)", {"histogram_weight": 0}),
                      ("aekit AnomalyDetector (local_weight=0)", {"local_weight": 0}),
                      ("aekit AnomalyDetector (n_estimators=3)", {"n_estimators": 3})):
        det = AnomalyDetector(**kw).fit(Xtrain)
        det.decision_function(X[:10_000])  # warm-up
        seconds = median_seconds(lambda: det.decision_function(X))
        results.append([label, f"{rows:,}", f"{seconds:.2f}", f"{rows / seconds:,.0f}"])
    try:
        from pyod.models.auto_encoder import AutoEncoder
    except ImportError:
        results.append(["PyOD AutoEncoder", "-", "-", "not installed (pip install -e '.[bench]')"])
        return results
    pyod = AutoEncoder(verbose=0, random_state=0).fit(Xtrain)
    Xp = X[:pyod_rows]
    seconds = median_seconds(lambda: pyod.decision_function(Xp), repeats=1)
    results.append(["PyOD AutoEncoder (defaults)", f"{pyod_rows:,}", f"{seconds:.2f}", f"{pyod_rows / seconds:,.0f}"])
    return results


def write_big_csv(path: Path, gigabytes: float) -> int:
    """Write a >= `gigabytes` CSV by repeating one generated block (fast, bounded memory)."""
    import pandas as pd

    block = pd.DataFrame(make_table(200_000, 30, seed=2), columns=[f"f{i}" for i in range(30)])
    text = block.to_csv(index=False, float_format="%.5f")
    header, body = text.split("\n", 1)
    rows = 0
    with open(path, "w") as fh:
        fh.write(header + "\n")
        while fh.tell() < gigabytes * 1e9:
            fh.write(body)
            rows += len(block)
    return rows


def streaming(gigabytes: float, workdir: Path) -> list[list[str]]:
    from aekit import AnomalyDetector

    csv = workdir / "big.csv"
    rows = write_big_csv(csv, gigabytes)
    import pandas as pd

    model = workdir / "model"
    AnomalyDetector().fit(pd.read_csv(csv, nrows=20_000)).save(model)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS_CLI, "anomaly", "score", str(csv), "--model", str(model),
                           "--out", str(workdir / "scores.csv"), "--quiet"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    peak = float(proc.stdout.split("PEAK_RSS_MB")[1].split()[0])
    size_gb = csv.stat().st_size / 1e9
    return [[f"{size_gb:.2f} GB CSV", f"{rows:,}", f"{seconds:.0f}", f"{rows / seconds:,.0f}", f"{peak:,.0f} MB"]]


def write_png_folder(folder: Path, n: int, seed: int) -> None:
    """``n`` 32x32 RGB PNGs: random crops of the shared photos (noise blobs without them)."""
    folder.mkdir(parents=True)
    for i, tile in enumerate(photo_tiles(n, seed)):
        tile.save(folder / f"{i:06d}.png")


def cli_seconds(*args: str | Path, repeats: int = 3) -> float:
    """Median wall time of ``aekit ARGS`` in a new process (the console script's own path)."""
    aekit = Path(sys.executable).with_name("aekit")
    return median_seconds(lambda: subprocess.run([str(aekit), *map(str, args)], capture_output=True, check=True),
                          repeats)


def write_grey_digits(folder: Path, labels_wanted: int | None, n: int, seed: int) -> None:
    """``n`` grey 32x32 PNGs of scikit-learn's 8x8 digits (only ``labels_wanted`` if given)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    pool = np.flatnonzero(y == labels_wanted) if labels_wanted is not None else np.arange(len(y))
    chosen = np.random.default_rng(seed).choice(pool, n, replace=n > len(pool))
    folder.mkdir(parents=True)
    for i, k in enumerate(chosen):
        tile = Image.fromarray((X[k].reshape(8, 8) / 16 * 255).astype(np.uint8)).resize((32, 32), Image.BILINEAR)
        tile.save(folder / f"{i:05d}.png")


def byte_compile_aekit() -> None:
    """Byte-compile aekit's modules, as ``pip install`` does with a wheel, so that a new
    process runs what an installed aekit runs. Python writes these files itself at a first
    import, except where PYTHONDONTWRITEBYTECODE is set (as on this project's box): there
    an editable install compiled every module from source at every start (0.04 s)."""
    import compileall

    import aekit

    compileall.compile_dir(Path(aekit.__file__).parent, quiet=1)


def startup_part(workdir: Path) -> list[list[str]]:
    import pandas as pd

    from aekit import AnomalyDetector
    from aekit.apps.anomaly import ImageAnomalyDetector
    from aekit.apps.anomaly.jobs import score_file

    byte_compile_aekit()
    rows = [["`aekit --help`", "", "", f"{cli_seconds('--help'):.2f}", ""],
            ["`aekit --version`", "", "", f"{cli_seconds('--version'):.2f}", ""]]
    write_grey_digits(workdir / "digits_train", 1, 150, seed=1)
    write_grey_digits(workdir / "digits", None, 3000, seed=2)
    (workdir / "one_image").mkdir()
    shutil.copy(workdir / "digits" / "00000.png", workdir / "one_image" / "00000.png")
    ImageAnomalyDetector().fit(str(workdir / "digits_train")).save(workdir / "digits_model")
    frame = pd.DataFrame(make_table(1_000_000, 30, seed=3), columns=[f"f{i}" for i in range(30)])
    frame.to_csv(workdir / "rows.csv", index=False, float_format="%.5f")
    frame.head(1).to_csv(workdir / "one_row.csv", index=False)
    AnomalyDetector().fit(frame.head(20_000)).save(workdir / "table_model")
    cases = [("one row (fixed cost)", workdir / "one_row.csv", "table_model", 1),
             ("one image (fixed cost)", workdir / "one_image", "digits_model", 1),
             ("3,000 grey 32x32 PNGs", workdir / "digits", "digits_model", 3000),
             ("1,000,000-row CSV, 30 columns", workdir / "rows.csv", "table_model", 1_000_000)]
    for label, data, model, n in cases:
        det = (ImageAnomalyDetector if "digits" in model else AnomalyDetector).load(workdir / model)
        twin = median_seconds(lambda: score_file(data, det, workdir / "twin.csv", verbose=0), repeats=2)
        cli = cli_seconds("anomaly", "score", data, "--model", workdir / model, "--out", workdir / "cli.csv",
                          "--quiet", repeats=2)
        rows.append([f"`aekit anomaly score`: {label}", f"{n:,}", f"{twin:.2f} ({n / twin:,.0f}/s)", f"{cli:.2f}",
                     f"{n / cli:,.0f}"])
    return rows


def write_npz(path: Path, images: np.ndarray) -> None:
    np.savez(path, images=(images[:, 0] * 255).round().astype(np.uint8))


def images_part(n: int, workdir: Path) -> list[list[str]]:
    from PIL import Image

    from aekit.apps.anomaly import ImageAnomalyDetector
    from aekit.apps.anomaly.jobs import score_file
    from aekit.data.images import image_chunks, load_images

    byte_compile_aekit()  # for the rows of a new process
    write_png_folder(workdir / "train_png", 2000, seed=1)
    write_png_folder(workdir / "png", n, seed=2)
    sources = [("32x32 RGB PNG folder", workdir / "png", workdir / "train_png")]
    mnist = SHARED / "mnist" / "mnist.npz"
    if mnist.exists():
        with np.load(mnist) as f:
            write_npz(workdir / "mnist.npz", f["x_test"][:n, None] / 255.0)
            write_npz(workdir / "mnist_train.npz", f["x_train"][:2000, None] / 255.0)
        sources.append(("28x28 MNIST .npz", workdir / "mnist.npz", workdir / "mnist_train.npz"))
    rows = []
    for label, data, train in sources:
        model = workdir / f"model_{data.stem}"
        ImageAnomalyDetector().fit(load_images(train).images).save(model)
        det = ImageAnomalyDetector.load(model)
        steps = []
        if data.is_dir():
            files = sorted(data.glob("*.png"))

            def bare() -> None:
                for f in files:
                    with Image.open(f) as im:
                        np.asarray(im.convert("RGB"))

            steps.append(("Pillow bare decode (one thread)", bare))

        def decode_only() -> None:
            for _ in image_chunks(data, det.image_spec_)[1]:
                pass

        images = load_images(data, det.image_spec_).images
        steps += [("aekit decode (streamed chunks)", decode_only),
                  ("aekit scoring only (in memory, chunks of 1,024)",
                   lambda: [det.decision_function(images[at:at + 1024]) for at in range(0, len(images), 1024)]),
                  ("aekit end to end (decode + score + CSV + 20 heat maps)",
                   lambda: score_file(data, det, workdir / "scores.csv", verbose=0))]
        for name, fn in steps:
            seconds = median_seconds(fn, repeats=1 if "end to end" in name else 2)
            rows.append([label, name, f"{n:,}", f"{seconds:.2f}", f"{n / seconds:,.0f}", ""])
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", PEAK_RSS_CLI, "anomaly", "score", str(data), "--model", str(model),
                               "--out", str(workdir / "scores_cli.csv"), "--quiet"], capture_output=True, text=True,
                              check=True)
        seconds = time.perf_counter() - start
        peak = float(proc.stdout.split("PEAK_RSS_MB")[1].split()[0])
        rows.append([label, "`aekit anomaly score` (new process: imports included)", f"{n:,}", f"{seconds:.2f}",
                     f"{n / seconds:,.0f}", f"{peak:,.0f} MB"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--train-rows", type=int, default=20_000)
    ap.add_argument("--pyod-rows", type=int, default=1_000_000)
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    ap.add_argument("--file-gb", type=float, default=round(ram_gb / 4 + 0.1, 1),
                    help=f"size of the streamed CSV (default RAM/4 = {ram_gb / 4:.1f} GB; 0 skips)")
    ap.add_argument("--workdir", default=None, help="where the big CSV goes (default: a temp dir)")
    ap.add_argument("--images", type=int, default=10_000, help="images per image source (0 skips)")
    ap.add_argument("--startup", action="store_true", help="the start-up rows (issue 34)")
    args = ap.parse_args()
    print(f"threads: torch {__import__('torch').get_num_threads()}, cores {os.cpu_count()}\n")
    if args.rows > 0:
        print("### In-memory scoring (30 features)\n")
        print(table(in_memory(args.rows, args.train_rows, args.pyod_rows), ["model", "rows", "seconds", "rows/s"]))
    if args.images > 0:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            print("\n### Images: scoring a folder of PNGs and an .npz (issue 18)\n")
            print(table(images_part(args.images, Path(tmp)),
                        ["source", "step", "images", "seconds", "images/s", "peak RSS"]))
    if args.file_gb > 0:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            print(f"\n### Streaming `aekit anomaly score` (machine RAM {ram_gb:.1f} GB)\n")
            print(table(streaming(args.file_gb, Path(tmp)), ["file", "rows", "seconds", "rows/s", "peak RSS"]))
    if args.startup:
        with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
            print("\n### Start-up: new `aekit` processes beside their in-process twins (issue 34)\n")
            print(table(startup_part(Path(tmp)), ["command", "rows or images", "in process: seconds (rate)",
                                                  "new process: seconds", "new process: per second"]))
    print(f"\n(benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB)")


if __name__ == "__main__":
    main()
