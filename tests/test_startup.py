"""What a command imports: heavy libraries only where the verb needs them (issue 34).

Each command runs in a fresh interpreter that then lists the top-level packages in
``sys.modules``; a heavy import that creeps back into ``aekit --help`` or a scoring verb
fails here, not in a user's start-up time."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aekit import AnomalyDetector, ImageAnomalyDetector

# runs the CLI's main in this interpreter, then prints the top-level packages it loaded
PROBE = """
import contextlib, io, json, sys
from aekit.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""
HEAVY = {"torch", "numpy", "pandas", "sklearn", "scipy", "matplotlib", "PIL", "safetensors", "librosa"}


def imported_by(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_and_version_import_nothing_heavy():
    for args in (["--help"], ["--version"], ["anomaly", "score", "--help"]):
        assert not imported_by(*args) & HEAVY, args


def test_the_package_lists_its_lazy_estimators_and_no_helpers():
    import aekit

    names = dir(aekit)
    assert {"AnomalyDetector", "ImageAnomalyDetector", "load_detector", "DataError"} <= set(names)
    assert not {"Any", "import_module", "annotations"} & set(names)


def test_a_command_builds_the_verbs_of_its_own_application_alone():
    from aekit.cli import COMMAND_MODULES, build_parser

    def verbs(parser):  # {application: its verbs}
        apps = next(a for a in parser._actions if a.dest == "application").choices
        return {name: sorted(next((a.choices for a in app._actions if a.choices and a.dest != "help"), {}))
                for name, app in apps.items()}

    everything = verbs(build_parser())
    assert sorted(everything) == sorted(COMMAND_MODULES)
    for name in COMMAND_MODULES:
        alone = verbs(build_parser([name, "--help"]))
        assert alone[name] == everything[name] and set(alone) < set(everything), name
    probe = "import sys; from aekit.cli import build_parser; build_parser(sys.argv[1:]); print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe, "anomaly", "score"], capture_output=True, text=True, timeout=60)
    commands = {m for m in out.stdout.split("'") if m.endswith(".commands")}
    assert commands == {"aekit.apps.anomaly.commands"}, commands


def test_scoring_images_imports_no_torch_scikit_learn_scipy_or_matplotlib(tmp_path):
    rng = np.random.default_rng(0)
    for folder, n in (("train", 24), ("test", 6)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / folder / f"{i}.png")
    ImageAnomalyDetector(epochs=1, n_estimators=1).fit(str(tmp_path / "train")).save(tmp_path / "m")
    loaded = imported_by("anomaly", "score", tmp_path / "test", "--model", tmp_path / "m",
                         "--out", tmp_path / "s.csv", "--quiet")
    assert (tmp_path / "s.csv").exists() and (tmp_path / "s_heatmaps").is_dir()
    # the model's saved graph runs in ONNX Runtime (apps/anomaly/onnx_images.py)
    assert not loaded & {"torch", "sklearn", "scipy", "matplotlib"}, loaded & {"torch", "sklearn", "scipy", "matplotlib"}


@pytest.mark.parametrize("labelled", [False, True])
def test_scoring_a_table_imports_no_torch_scikit_learn_scipy_or_matplotlib(tmp_path, labelled):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd"))
    AnomalyDetector(epochs=1).fit(frame).save(tmp_path / "m")
    frame.assign(label=rng.integers(0, 2, 60)).to_csv(tmp_path / "t.csv", index=False)
    args = ["anomaly", "score", tmp_path / "t.csv", "--model", tmp_path / "m", "--out", tmp_path / "s.csv", "--quiet"]
    loaded = imported_by(*args, *(["--label-col", "label"] if labelled else ["--id-col", "label"]))
    assert (tmp_path / "s.csv").exists()
    # a table model scores in numpy (apps/anomaly/light.py): torch is 1.3-2 s of a start;
    # a quiet run shows no progress bar, and imports none (tqdm.auto brings asyncio)
    unwanted = {"torch", "sklearn", "scipy", "matplotlib", "tqdm", "asyncio"}
    assert not loaded & unwanted, loaded & unwanted


def test_parameters_without_scikit_learn_base_class():
    from sklearn.base import clone

    from aekit import ParameterError

    det = AnomalyDetector(epochs=3, trim=0.1)
    assert repr(det) == "AnomalyDetector(epochs=3, trim=0.1)"  # only what differs from the defaults
    assert det.set_params(epochs=4) is det and det.epochs == 4
    with pytest.raises(ParameterError, match="invalid parameter 'epoch' for AnomalyDetector"):
        det.set_params(epoch=5)
    copy = clone(det)
    assert copy is not det and copy.get_params() == det.get_params()


def test_the_command_keeps_freed_memory_for_reuse_on_glibc(monkeypatch):
    import platform

    from aekit import memory

    assert memory.keep_freed_memory() is False  # not the command's own process: nothing changes
    monkeypatch.setattr(memory, "_command_process", True)  # as cli.entry's claim_process sets it
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert memory.keep_freed_memory() is expected and memory.keep_freed_memory() is expected  # twice: harmless


def test_the_command_ends_its_process_after_exit_handlers_and_flushed_output(tmp_path):
    """``aekit`` (``cli.entry``) ends its process itself, without the interpreter's teardown,
    once ``main`` returns: with ``main``'s exit code, after the exit handlers, and with the
    standard streams flushed (a pipe buffers what is not)."""
    probe = ("import atexit, sys\nfrom aekit.cli import entry\natexit.register(print, 'handler ran')\n"
             "sys.stdout.write('buffered ')\nsys.argv = ['aekit', 'anomaly', 'score', sys.argv[1], "
             "'--model', sys.argv[1], '--out', sys.argv[1] + '.csv']\nentry()\nprint('not reached')")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "missing.csv")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and out.stdout == "buffered handler ran\n", out.stderr
    assert out.stderr.startswith("aekit: error: ")


def test_a_verbs_imports_run_without_collections_and_are_frozen_after(monkeypatch):
    import gc

    from aekit import memory

    frozen = gc.get_freeze_count()  # the service's tests freeze what it loaded (service.py)
    assert gc.isenabled()
    with memory.importing_without_collections():  # not the command's own process: as it is
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
    monkeypatch.setattr(memory, "_command_process", True)
    try:
        with memory.importing_without_collections():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]  # tracked objects, as an import makes
        assert gc.isenabled() and gc.get_freeze_count() >= frozen + len(made)
    finally:
        gc.unfreeze()  # this test process collects as before
