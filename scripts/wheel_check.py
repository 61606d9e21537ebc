"""Install the wheel where nothing else is, and run what a new user runs first (`make dist-check`).

    python scripts/wheel_check.py dist/aekit-X.Y.Z-py3-none-any.whl [--keep DIR]

Creates a new virtual environment (no access to this checkout's packages), installs torch
(the pinned CPU build) and then only the wheel, whose other dependencies come from the
package index. Then, in an empty folder outside the checkout, it runs `aekit --version`,
`aekit anomaly demo`, `aekit voice make-corpus` + `voice convert`, `compress encode` +
`decode` and `summarize run`, all on bundled models and bundled data, and prints the wheel's
size and each command's time. Exits 1 if anything fails.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

TORCH = "torch==2.13.0"  # the Makefile's pin: the local CPU build, never a CUDA one
MAKE_PHOTO = ("from PIL import Image; from skimage import data; "
              "Image.fromarray(data.astronaut()).save('photo.png')")
MAKE_NEWS = ("open('news.txt', 'w').write('The European Central Bank raises its main interest rate by a quarter "
             "point to fight inflation.\\nHeavy rain floods parts of the city for the second time this week.\\n')")
COMMANDS = [  # (what, argv relative to the venv's bin/)
    ("version", ["aekit", "--version"]),
    ("anomaly demo", ["aekit", "anomaly", "demo", "--out", "demo_output"]),
    ("voice corpus", ["aekit", "voice", "make-corpus", "--out", "voices", "--voices", "2", "--sentences", "1"]),
    ("voice convert", ["aekit", "voice", "convert", "--source", "voices/m1_p30/000.wav", "--target",
                       "voices/m2_p30/000.wav", "--out", "converted.wav"]),
    ("a photo", ["python", "-c", MAKE_PHOTO]),
    ("compress encode", ["aekit", "compress", "encode", "photo.png", "--quality", "4", "--out", "photo.aek"]),
    ("compress decode", ["aekit", "compress", "decode", "photo.aek", "--out", "restored.png"]),
    ("news lines", ["python", "-c", MAKE_NEWS]),
    ("summarize run", ["aekit", "summarize", "run", "news.txt", "--out", "summaries.txt"]),
]


def run(argv: list[str], cwd: Path, what: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"wheel-check: {what} failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                         f"{done.stderr[-3000:]}")
    return seconds, (done.stdout + done.stderr).strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheel", type=Path)
    ap.add_argument("--keep", type=Path, help="make the environment here and keep it (default: a temporary folder)")
    args = ap.parse_args(argv)
    wheel = args.wheel.resolve()
    if not wheel.is_file() or wheel.suffix != ".whl":
        print(f"wheel-check: {wheel} is not a wheel file", file=sys.stderr)
        return 2
    with zipfile.ZipFile(wheel) as z:
        unpacked = sum(i.file_size for i in z.infolist())
    print(f"wheel {wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB ({unpacked / 1e6:.1f} MB unpacked)")
    root = args.keep or Path(tempfile.mkdtemp(prefix="aekit-wheel-"))
    try:
        env_dir, work = root / "venv", root / "work"
        work.mkdir(parents=True, exist_ok=True)
        bin_dir = env_dir / "bin"
        steps = [("venv", [sys.executable, "-m", "venv", str(env_dir)]),
                 ("pip install torch", [str(bin_dir / "pip"), "install", "-q", TORCH]),
                 ("pip install the wheel", [str(bin_dir / "pip"), "install", "-q", str(wheel)])]
        for what, command in steps:
            seconds, _ = run(command, root, what)
            print(f"{what:24s} {seconds:7.1f} s")
        for what, command in COMMANDS:
            seconds, output = run([str(bin_dir / command[0]), *command[1:]], work, what)
            last = output.splitlines()[-1] if output else ""
            print(f"{what:24s} {seconds:7.1f} s   {last[:90]}")
        site = next((env_dir / "lib").glob("python*/site-packages"))
        print(f"environment: {sum(f.stat().st_size for f in site.rglob('*') if f.is_file()) / 1e9:.2f} GB in "
              f"site-packages; summaries: {(work / 'summaries.txt').read_text().splitlines()}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print("wheel-check: every command ran from the wheel alone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
