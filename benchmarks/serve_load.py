"""Load and fault test of `aekit serve`, against 127.0.0.1 only, bounded in count and time.

1. Latency and throughput of single-row requests at 1, 8 and 64 concurrent clients
   (keep-alive connections, each client sends its next request when the last is answered).
2. Rows/s of 1,000-row requests (JSON and CSV) next to in-process scoring of the same rows
   (``score_explain`` on a DataFrame of 1,000 rows, and on 100,000 rows at once).
3. Faults: clients send requests with retries while the server is killed (SIGKILL) and
   restarted, then stopped gracefully (SIGTERM) and restarted; every request must end with
   the right answer (scoring is idempotent, so a retry is safe).

The model: AnomalyDetector defaults on scikit-learn's breast cancer table (30 columns).

With ``--series``, phases 1-2 serve a time-series model instead: SeriesAnomalyDetector
defaults (window 64) on 20 synthetic machines of 2 channels (a sine and a cosine, each
machine its own level and phase; an ID and a time column). A stream client sends the last
64 rows of one machine (the newest row's score); a fleet client the last 64 rows of all 20
(1,280 rows). In-process: ``score_with_notes`` on the same tables.

With ``--images``, an image model instead: ImageAnomalyDetector defaults on the zeros of
scikit-learn's digits at 32x32; a request is one PNG as the body, or 16 PNGs as base64 in
JSON. In-process: ``score_maps`` on the decoded images.

    python benchmarks/serve_load.py [--seconds 5] [--series | --images]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, table  # noqa: E402

HOST = "127.0.0.1"
MAX_REQUESTS = 200_000  # per phase: the loops are bounded in count as well as in time
PACE = 0.02  # seconds a fault-test client waits between answered requests


class Connection:
    """A minimal keep-alive HTTP/1.1 client (the load generator must cost less than the server)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader = self.writer = None

    async def request(self, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        head = (f"POST /v1/score HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "aekit", "serve", "--model", str(model), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the server did not start; see {log}")


async def load(port: int, bodies: list[bytes], clients: int, seconds: float,
               content_type: str = "application/json") -> tuple[list[float], int]:
    """Latencies (s) of every answered request, and the error count."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal errors
        conn = Connection(port)
        i = k
        while time.perf_counter() < stop and len(latencies) < MAX_REQUESTS:
            t = time.perf_counter()
            status, _ = await conn.request(bodies[i % len(bodies)], content_type)
            latencies.append(time.perf_counter() - t)
            errors += status != 200
            i += clients
        conn.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies, errors


async def faults(model: Path, port: int, log: Path, bodies: list[bytes], expected: np.ndarray,
                 per_client: int, clients: int) -> dict[str, float]:
    """Clients with retries while the server is killed and restarted twice."""
    server = {"proc": start_server(model, port, log)}
    answered: dict[int, float] = {}
    retries = 0

    async def client(k: int) -> None:
        nonlocal retries
        conn = Connection(port)
        for i in range(k, per_client * clients, clients):
            for _attempt in range(2000):  # bounded: about 100 s of retrying at most
                try:
                    status, body = await conn.request(bodies[i % len(bodies)])
                    if status == 200:
                        answered[i] = orjson.loads(body)["results"][0]["score"]
                        await asyncio.sleep(PACE)  # spread the requests over the restarts
                        break
                except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                    pass
                retries += 1
                conn.close()
                await asyncio.sleep(0.05)
        conn.close()

    async def chaos() -> list[float]:
        downtimes = []
        for sig in (signal.SIGKILL, signal.SIGTERM):
            await asyncio.sleep(1.5)
            t = time.perf_counter()
            server["proc"].send_signal(sig)
            await asyncio.to_thread(server["proc"].wait)
            server["proc"] = await asyncio.to_thread(start_server, model, port, log)
            downtimes.append(time.perf_counter() - t)
        return downtimes

    results = await asyncio.gather(chaos(), *(client(k) for k in range(clients)))
    server["proc"].terminate()
    server["proc"].wait()
    sent = per_client * clients
    # float32 scoring: a row's last digits depend on the rows it shares a pass with (the ONNX parity bound)
    wrong = sum(abs(answered[i] - expected[i % len(bodies)]) > 1e-5 * abs(expected[i % len(bodies)]) for i in answered)
    return {"requests": sent, "answered": len(answered), "lost": sent - len(answered), "wrong": wrong,
            "retries": retries, "kill_restart_s": results[0][0], "term_restart_s": results[0][1]}


def percentile_ms(latencies: list[float], q: float) -> str:
    return f"{1000 * float(np.percentile(latencies, q)):.2f}"


def machines(rows: int, count: int, seed: int) -> Any:
    """``count`` machines' two channels, ``rows`` each, interleaved in time order."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    times = pd.date_range("2024-01-01", periods=rows, freq="1min").astype(str)
    parts = [pd.DataFrame({"machine": f"m{k:02d}", "time": times,
                           "load": np.sin(2 * np.pi * t / 50 + k) + k + 0.05 * rng.standard_normal(rows),
                           "temp": np.cos(2 * np.pi * t / 50 + k) + 0.05 * rng.standard_normal(rows)})
             for k in range(count)]
    return pd.concat(parts).sort_values(["time", "machine"], kind="stable").reset_index(drop=True)


def series_phases(seconds: float) -> None:
    """Stream and fleet requests to a served time-series model, against in-process scoring."""
    from aekit.apps.anomaly import SeriesAnomalyDetector

    work = Path(tempfile.mkdtemp(prefix="aekit_serve_series_"))
    model = work / "model"
    count, window = 20, 64
    SeriesAnomalyDetector(time_col="time", id_col="machine", window=window, random_state=0
                          ).fit(machines(1500, count, 0)).save(model)
    det = SeriesAnomalyDetector.load(model)
    later = machines(window + 200, count, 1)
    ends = range(window, window + 200)  # each request ends one row later
    stream = [later[later["machine"] == "m00"].iloc[e - window:e] for e in ends]
    fleet = [later.iloc[(e - window) * count:e * count] for e in ends]
    workloads = [("stream, 64 rows of 1 machine", stream, (1, 8)), ("fleet, 64 rows x 20 machines", fleet, (1, 4))]
    rows = []
    port = free_port()
    server = start_server(model, port, work / "server.log")
    try:
        for name, frames, clients_list in workloads:
            bodies = [orjson.dumps({"records": f.to_dict("records")}) for f in frames]
            for clients in clients_list:
                lat, errors = asyncio.run(load(port, bodies, clients, seconds))
                rows.append([f"{name}, {clients} clients", f"{len(lat) / seconds:,.1f} req/s",
                             f"{len(lat) / seconds * len(frames[0]):,.0f}", percentile_ms(lat, 50),
                             percentile_ms(lat, 99), errors])
    finally:
        server.terminate()
        server.wait()
    for name, frames, _ in workloads:
        with Timer() as t:
            for f in frames:
                det.score_with_notes(f)
        rows.append([f"in-process score_with_notes, {name}", f"{len(frames) / t.seconds:,.1f} calls/s",
                     f"{len(frames) * len(frames[0]) / t.seconds:,.0f}", "", "", ""])
    print(f"aekit serve, a time-series model, on {HOST}, {os.cpu_count()} cores, {seconds:g} s per phase")
    print(table(rows, ["requests", "throughput", "rows/s", "p50 ms", "p99 ms", "errors"]))


def image_phases(seconds: float) -> None:
    """Single PNGs and batches of 16 to a served image model, against in-process scoring."""
    import base64
    import io

    from PIL import Image
    from sklearn.datasets import load_digits

    from aekit.apps.anomaly import ImageAnomalyDetector

    digits = load_digits()
    pictures = [Image.fromarray((im * 15.9).astype(np.uint8)).resize((32, 32)) for im in digits.images]
    arrays = np.stack([np.asarray(p, dtype=np.float32)[None] / 255 for p in pictures])
    work = Path(tempfile.mkdtemp(prefix="aekit_serve_images_"))
    model = work / "model"
    ImageAnomalyDetector(random_state=0).fit(arrays[digits.target == 0]).save(model)
    det = ImageAnomalyDetector.load(model)

    def png(picture: Any) -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        return buffer.getvalue()

    files = [png(p) for p in pictures[:256]]
    singles = files
    batches = [orjson.dumps({"images": [base64.b64encode(f).decode() for f in files[k:k + 16]]})
               for k in range(0, 256, 16)]
    rows = []
    port = free_port()
    server = start_server(model, port, work / "server.log")
    try:
        for name, bodies, ctype, per, clients_list in (("1 PNG", singles, "image/png", 1, (1, 8)),
                                                        ("16 PNGs as JSON", batches, "application/json", 16, (1, 4))):
            for clients in clients_list:
                lat, errors = asyncio.run(load(port, bodies, clients, seconds, ctype))
                rows.append([f"{name}, {clients} clients", f"{len(lat) / seconds:,.1f} req/s",
                             f"{len(lat) / seconds * per:,.0f}", percentile_ms(lat, 50), percentile_ms(lat, 99), errors])
    finally:
        server.terminate()
        server.wait()
    for per in (1, 16):
        with Timer() as t:
            for k in range(0, 256, per):
                det.score_maps(arrays[k:k + per])
        rows.append([f"in-process score_maps, {per} per call", "", f"{256 / t.seconds:,.0f}", "", "", ""])
    print(f"aekit serve, an image model (32x32 grey), on {HOST}, {os.cpu_count()} cores, {seconds:g} s per phase")
    print(table(rows, ["requests", "throughput", "images/s", "p50 ms", "p99 ms", "errors"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per load phase")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--series", action="store_true", help="serve a time-series model (phases 1-2)")
    kind.add_argument("--images", action="store_true", help="serve an image model (phases 1-2)")
    args = parser.parse_args()
    if args.series or args.images:
        (series_phases if args.series else image_phases)(args.seconds)
        return

    from aekit.apps.anomaly import AnomalyDetector
    from aekit.apps.anomaly.light import score_frame
    from aekit.data import load_breast_cancer_frame

    frame = load_breast_cancer_frame().drop(columns="diagnosis")
    work = Path(tempfile.mkdtemp(prefix="aekit_serve_"))
    model = work / "model"
    AnomalyDetector(random_state=0).fit(frame).save(model)
    det = AnomalyDetector.load(model)
    records = frame.to_dict("records")
    singles = [orjson.dumps({"records": [r]}) for r in records]
    expected = det.score_explain(frame)[0]  # what `aekit anomaly score` writes
    rng = np.random.default_rng(0)
    batch = frame.iloc[rng.integers(0, len(frame), 1000)].reset_index(drop=True)
    batch_json = [orjson.dumps({"records": batch.to_dict("records")})]
    batch_csv = [batch.to_csv(index=False).encode()]

    # in-process reference: the same 1,000 rows, and 100,000 rows in one call
    big = frame.iloc[rng.integers(0, len(frame), 100_000)].reset_index(drop=True)
    with Timer() as t:
        for _ in range(20):
            det.score_explain(batch)
    in_process_1k = 20_000 / t.seconds
    with Timer() as t:
        det.score_explain(big)
    in_process_100k = len(big) / t.seconds
    with Timer() as t:  # the service's answer in process: scores, flags and top features
        for _ in range(20):
            score_frame(det, batch)
    same_answer_1k = 20_000 / t.seconds

    port = free_port()
    log = work / "server.log"
    server = start_server(model, port, log)
    rows = []
    try:
        for clients in (1, 8, 64):
            lat, errors = asyncio.run(load(port, singles, clients, args.seconds))
            rows.append([f"1 row, {clients} clients", f"{len(lat) / args.seconds:,.0f} req/s",
                         f"{len(lat) / args.seconds:,.0f}", percentile_ms(lat, 50), percentile_ms(lat, 99), errors])
        rates = {}
        for name, bodies, ctype in (("JSON", batch_json, "application/json"), ("CSV", batch_csv, "text/csv")):
            for clients in (1, 4):
                lat, errors = asyncio.run(load(port, bodies, clients, args.seconds, ctype))
                rates[(name, clients)] = 1000 * len(lat) / args.seconds
                rows.append([f"1,000 rows {name}, {clients} clients", f"{len(lat) / args.seconds:,.1f} req/s",
                             f"{rates[(name, clients)]:,.0f}", percentile_ms(lat, 50), percentile_ms(lat, 99), errors])
    finally:
        server.terminate()
        server.wait()
    rows.append(["in-process score_frame, 1,000 rows", "", f"{same_answer_1k:,.0f}", "", "", ""])
    rows.append(["in-process score_explain, 1,000 rows", "", f"{in_process_1k:,.0f}", "", "", ""])
    rows.append(["in-process score_explain, 100,000 rows", "", f"{in_process_100k:,.0f}", "", "", ""])
    print(f"aekit serve on {HOST}, {os.cpu_count()} cores, {args.seconds:g} s per phase (client in this process)")
    print(table(rows, ["requests", "throughput", "rows/s", "p50 ms", "p99 ms", "errors"]))
    best = max(rates.values())
    print(f"best batch rate {best:,.0f} rows/s = {best / same_answer_1k:.0%} of in-process score_frame (the same "
          f"answer: scores, flags, top features) on 1,000-row frames; {best / in_process_1k:.0%} of bare "
          f"score_explain on 1,000-row frames, {best / in_process_100k:.0%} on 100,000 rows")

    fault = asyncio.run(faults(model, free_port(), log, singles, expected, per_client=500, clients=8))
    print("\nfault test: 8 clients x 500 single-row requests with retries; the server is killed (SIGKILL) and "
          "restarted, then stopped (SIGTERM) and restarted")
    print(table([[fault["requests"], fault["answered"], fault["lost"], fault["wrong"], fault["retries"],
                  f"{fault['kill_restart_s']:.1f}", f"{fault['term_restart_s']:.1f}"]],
                ["requests", "answered", "lost", "wrong score", "retries", "SIGKILL->ready s", "SIGTERM->ready s"]))


if __name__ == "__main__":
    main()
