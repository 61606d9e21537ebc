"""Look at the built site as a person would: open pages in headless Chromium, take screenshots,
and check what a reader would notice (`make docs-check`).

    python scripts/docs_check.py [--site site] [--out docs_check]

Serves ``site/`` on a local port, drives Debian's Chromium (``/usr/bin/chromium``; `apt-get
install chromium`) over the DevTools protocol, and for the home page, one application page and
one API page writes a full-page screenshot (``OUT/<name>.png``) and checks, in the rendered
page: the navigation is there; every image has loaded (its natural width is not 0); code
blocks are highlighted; tables have rows; the API page has rendered signatures. Exits 1 with
one line per problem found, 0 otherwise. ``--all`` checks (and screenshots) every page.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import http.server
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PAGES = {  # name -> (path under the site, what that page must show)
    "home": ("", {"tables": 1, "images": 3, "code": 2}),
    "application": ("anomaly/tables/", {"tables": 2, "images": 3, "code": 4}),
    "api": ("api/anomaly/", {"signatures": 10, "code": 0}),
}
# what the page looks like to a reader, measured in the browser after it has loaded
INSPECT = """(() => {
  const images = [...document.querySelectorAll('article img')];
  return {
    title: document.title,
    nav: document.querySelectorAll('nav.md-nav--primary a.md-nav__link').length,
    images: images.length,
    broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
    code: document.querySelectorAll('article div.highlight pre').length,
    highlighted: [...document.querySelectorAll('article div.language-python pre, article div.language-bash pre')]
      .filter(pre => pre.querySelector('span[class]')).length,
    languages: document.querySelectorAll('article div.language-python pre, article div.language-bash pre').length,
    tables: document.querySelectorAll('article table').length,
    empty_tables: [...document.querySelectorAll('article table')].filter(t => t.rows.length < 2).length,
    signatures: document.querySelectorAll('article .doc-signature, article .doc-heading').length,
    height: document.documentElement.scrollHeight,
  };
})()"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--remote-debugging-port=0"]


class DevTools:
    """One Chromium tab over the DevTools protocol (websocket, JSON messages)."""

    def __init__(self, chromium: str, profile: Path) -> None:
        self.process = subprocess.Popen([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            time.sleep(0.1)
        else:
            self.close()
            raise SystemExit("docs-check: Chromium did not start (no DevToolsActivePort)")
        port = port_file.read_text().split()[0]
        tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in tabs if t["type"] == "page")
        from websockets.sync.client import connect

        self.connection = contextlib.ExitStack()
        self.socket = self.connection.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None))
        self.next_id = 0
        self.call("Page.enable")

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def open(self, url: str, width: int = 1280, height: int = 900) -> dict:
        """Load ``url`` at a desktop window size; what ``INSPECT`` sees once it has loaded."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)
        deadline = time.time() + 30
        while time.time() < deadline:  # loaded, fonts and images included
            state = self.evaluate("document.readyState")
            if state == "complete" and self.evaluate("[...document.images].every(i => i.complete)"):
                break
            time.sleep(0.1)
        time.sleep(0.3)  # the theme's scripts settle the layout
        return self.evaluate(INSPECT)

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def screenshot(self, path: Path, height: int) -> None:
        """The whole page, up to 6,000 pixels tall."""
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(max(height, 900), 6000),
                  deviceScaleFactor=1, mobile=False)
        time.sleep(0.3)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        if hasattr(self, "connection"):
            self.connection.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def problems_of(name: str, seen: dict, wants: dict) -> list[str]:
    problems = []
    if seen["nav"] < 10:
        problems.append(f"{name}: the navigation shows {seen['nav']} links")
    if seen["broken"]:
        problems.append(f"{name}: images that did not load: {seen['broken']}")
    if seen["images"] < wants.get("images", 0):
        problems.append(f"{name}: {seen['images']} images, expected at least {wants['images']}")
    if seen["code"] < wants.get("code", 0):
        problems.append(f"{name}: {seen['code']} code blocks, expected at least {wants['code']}")
    if seen["highlighted"] < seen["languages"]:
        problems.append(f"{name}: {seen['languages'] - seen['highlighted']} Python/bash code blocks are not highlighted")
    if seen["tables"] < wants.get("tables", 0) or seen["empty_tables"]:
        problems.append(f"{name}: {seen['tables']} tables ({seen['empty_tables']} without rows)")
    if seen["signatures"] < wants.get("signatures", 0):
        problems.append(f"{name}: {seen['signatures']} API entries rendered, expected at least {wants['signatures']}")
    return problems


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(site), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default="site", help="the built site (make docs)")
    ap.add_argument("--out", default="docs_check", help="folder for the screenshots")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--all", action="store_true", help="every page of the site, not only the three")
    args = ap.parse_args(argv)
    site, out = Path(args.site), Path(args.out)
    if not (site / "index.html").exists():
        print(f"docs-check: no site at {site}/ (run make docs first)", file=sys.stderr)
        return 2
    if not Path(args.chromium).exists():
        print(f"docs-check: no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 2
    out.mkdir(exist_ok=True)
    pages = dict(PAGES)
    if args.all:  # the others need only what every page needs: navigation, loaded images, rows in tables
        checked = {path for path, _ in PAGES.values()}
        for index in sorted(site.rglob("index.html")):
            folder = index.parent.relative_to(site).as_posix()
            path = "" if folder == "." else folder + "/"
            if path not in checked and not path.startswith(("assets", "search")):
                pages[path.strip("/").replace("/", "_")] = (path, {})
    server, base = serve(site)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as profile:
        browser = DevTools(args.chromium, Path(profile))
        try:
            for name, (path, wants) in pages.items():
                seen = browser.open(base + path)
                browser.screenshot(out / f"{name}.png", seen["height"])
                print(f"{name:12s} {path or '/':18s} nav {seen['nav']:3d}  images {seen['images']:2d} "
                      f"(broken {len(seen['broken'])})  code {seen['code']:2d}  tables {seen['tables']:2d}  "
                      f"api entries {seen['signatures']:3d}  -> {out / (name + '.png')}")
                problems += problems_of(name, seen, wants)
        finally:
            browser.close()
            server.shutdown()
    for line in problems:
        print("docs-check:", line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
