"""The documentation is tested as code: every block marked ``<!-- runnable -->`` in the README
and in docs/ runs here, in order, page by page, in an empty folder (a renamed argument breaks
this test, not a user), and the site builds in MkDocs' strict mode.

A page's Python blocks share one namespace, and its bash blocks run in the same folder, so a
block may use what an earlier block of the page made. Each page starts from an empty folder.
In a bash block, an ``aekit ...`` command runs in this process through ``aekit.cli.main``
(the same parser and code as the console script, without a new interpreter's 2-4 s of
imports); every other line runs in bash.
"""
from __future__ import annotations

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- runnable -->"
# the marker, then a fenced block on the next line: ```python or ```bash
RUNNABLE = re.compile(r"^<!-- runnable -->\n```(python|bash)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
APPLICATION_PAGES = ["anomaly/tables.md", "anomaly/images.md", "anomaly/series.md", "codes.md", "generate.md",
                     "voice.md", "compress.md", "summarize.md", "tree.md", "deploy.md", "install.md"]


def runnable_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, code) of each runnable block of a page, in order."""
    text = page.read_text(encoding="utf-8")
    blocks = [(m.group(1), m.group(2)) for m in RUNNABLE.finditer(text)]
    # a marker the pattern did not take (a typo in the fence, a blank line between) is a bug here
    markers = len(re.findall(rf"^{MARKER}\s*$", text, re.MULTILINE))
    assert markers == len(blocks), f"{page.name}: a runnable marker is not followed by a ```python/```bash block"
    return blocks


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES_WITH_EXAMPLES = [p for p in PAGES if re.search(rf"^{MARKER}", p.read_text(encoding="utf-8"), re.MULTILINE)]


def test_every_application_page_has_runnable_examples():
    have = {str(p.relative_to(ROOT / "docs")) for p in PAGES_WITH_EXAMPLES if p.parent != ROOT}
    assert set(APPLICATION_PAGES) <= have, f"pages without a runnable example: {set(APPLICATION_PAGES) - have}"
    assert runnable_blocks(ROOT / "README.md")


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=page_id)
def test_runnable_examples(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the console script beside this interpreter, for bash lines and for examples that start `aekit serve`
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = dict(os.environ)
    namespace: dict = {"__name__": "__main__"}
    for k, (language, code) in enumerate(runnable_blocks(page), 1):
        where = f"{page_id(page)}, runnable block {k}"
        if language == "python":
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 (the docs' own examples)
        else:
            for command in shell_commands(code):
                run_command(command, env, where)


def shell_commands(code: str) -> list[str]:
    """The commands of a bash block: lines joined where they end in a backslash."""
    return [c.strip() for c in code.replace("\\\n", " ").splitlines() if c.strip() and not c.strip().startswith("#")]


def run_command(command: str, env: dict, where: str) -> None:
    words = shlex.split(command, comments=True)
    if words[0] == "aekit" and not set("|<>;&") & set(command.split("#")[0]):
        from aekit.cli import main

        try:
            code = main(words[1:])
        except SystemExit as exc:  # argparse's --help and --version end this way
            code = exc.code
        assert code in (0, None), f"{where}: {command!r} failed (exit {code})"
        return
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{where}: {command!r} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_site_builds_in_strict_mode(tmp_path):
    """A broken link, a page missing from the nav's files or an API reference that does not
    resolve fails ``mkdocs build --strict``."""
    pytest.importorskip("mkdocs")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # every public name (each package's __all__) has an entry in the API reference
    ids = set()
    for page in (tmp_path / "site" / "api").rglob("index.html"):
        ids |= {i.rsplit(".", 1)[-1] for i in re.findall(r'id="(aekit[\w.]*)"', page.read_text())}
    missing = {f"{module}.{name}" for module in PUBLIC_MODULES for name in importlib.import_module(module).__all__
               if name not in ids and name != "__version__"}
    assert not missing, f"public names without an API entry: {sorted(missing)}"


PUBLIC_MODULES = ["aekit", "aekit.apps.anomaly", "aekit.apps.codes", "aekit.apps.compress", "aekit.apps.generate",
                  "aekit.apps.summarize", "aekit.apps.tree", "aekit.apps.voice", "aekit.nn", "aekit.data"]
