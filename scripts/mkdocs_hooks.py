"""MkDocs hooks for the documentation site (mkdocs.yml names this file).

``<!-- include: FILE -->`` on a line of its own is replaced by the repository file FILE
(BENCHMARKS.md, CHANGELOG.md), so the site shows those files as they are on GitHub without a
copy to keep in step. Their links are written relative to the repository root
(``docs/img/x.png``); they are rewritten relative to the page that includes them.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = re.compile(r"^<!-- include: (\S+) -->$", re.MULTILINE)
LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s]+)\)")


def _rewrite_links(text: str, page_dir: str) -> str:
    """Links relative to the repository root -> relative to the including page."""

    def fix(match: re.Match[str]) -> str:
        target = match.group(1)
        path, _, anchor = target.partition("#")
        if path.startswith("docs/"):
            path = posixpath.relpath(path[len("docs/"):], page_dir or ".")
        elif path == "BENCHMARKS.md":
            path = posixpath.relpath("benchmarks.md", page_dir or ".")
        return f"]({path}{'#' + anchor if anchor else ''})"

    return LINK.sub(fix, text)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' signature)
    page_dir = posixpath.dirname(page.file.src_uri)

    def include(match: re.Match[str]) -> str:
        return _rewrite_links((ROOT / match.group(1)).read_text(encoding="utf-8"), page_dir)

    return INCLUDE.sub(include, markdown)
