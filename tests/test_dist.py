"""Packaging: the version has one source, and the wheel holds the package and its bundled
models, and nothing of the repository's tests, benchmarks or caches."""
from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from aekit import __version__
from aekit.cli import main

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = [f"aekit/apps/{app}/default_model/{name}" for app in ("voice", "compress", "summarize")
           for name in ("config.json", "model.safetensors")]


def test_version_is_printed_and_the_changelog_starts_at_it(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"aekit {__version__}"
    first = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert first and first.group(1) == __version__


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """An sdist and the wheel built from it (``make dist``'s command)."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_wheel_holds_the_package_and_its_models_and_nothing_else(built):
    wheel = built / f"aekit-{__version__}-py3-none-any.whl"
    assert wheel.exists(), sorted(p.name for p in built.iterdir())
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(f"aekit-{__version__}.dist-info/METADATA").decode()
        entry_points = z.read(f"aekit-{__version__}.dist-info/entry_points.txt").decode()
    assert set(BUNDLED) <= set(names)
    assert "aekit/py.typed" in names and "aekit/cli.py" in names
    tops = {n.split("/")[0] for n in names}
    assert tops == {"aekit", f"aekit-{__version__}.dist-info"}, tops  # no tests/, benchmarks/, scripts/
    unwanted = [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".ckpt")) or "/.aekit" in n]
    assert not unwanted
    # every module of the source tree is in the wheel
    sources = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "aekit").rglob("*.py")}
    assert sources <= set(names), sources - set(names)
    assert f"Version: {__version__}" in metadata and "License-Expression: BSD-3-Clause" in metadata
    assert "aekit = aekit.cli:entry" in entry_points


def test_sdist_holds_what_builds_the_wheel(built):
    with tarfile.open(built / f"aekit-{__version__}.tar.gz") as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE"} <= names
    assert {f"src/{b}" for b in BUNDLED} <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/", "scripts/")) or "__pycache__" in n]
