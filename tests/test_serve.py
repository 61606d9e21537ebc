"""The HTTP scoring service: every endpoint with good and bad input, auth, limits, timeouts,
micro-batching and hot reload (a good and a bad new model)."""
from __future__ import annotations

import asyncio
import re
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aekit.apps.anomaly import AnomalyDetector, read_detector
from aekit.apps.anomaly.jobs import score_file
from aekit.errors import DataError

from .conftest import make_kdd_rows

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note on its httpx backend
    from fastapi.testclient import TestClient

from aekit.apps.anomaly.service import MicroBatcher, ServiceOptions, create_app, load_served  # noqa: E402
from aekit.apps.anomaly.metrics import ServiceMetrics  # noqa: E402

SMALL = dict(n_estimators=1, epochs=15, batch_size=64, verbose=0)


@pytest.fixture(scope="module")
def served(tmp_path_factory, cancer_split):
    """A table model directory, the rows it was trained on and held-out rows."""
    X_train, X_test, _ = cancer_split
    path = tmp_path_factory.mktemp("serve") / "model"
    AnomalyDetector(**SMALL, threshold="fpr:0.05").fit(X_train).save(path)
    return path, X_train, X_test


def client(path: Path, **options) -> TestClient:
    return TestClient(create_app(path, ServiceOptions(reload_interval=0, **options)))


def post_json(c: TestClient, body: bytes, **headers):
    return c.post("/v1/score", content=body, headers={"content-type": "application/json", **headers})


def test_json_and_csv_scores_equal_the_cli(served, tmp_path):
    path, _, X_test = served
    rows = X_test.head(40)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    score_file(tmp_path / "rows.csv", path, tmp_path / "out.csv", verbose=0)
    expected = pd.read_csv(tmp_path / "out.csv")
    with client(path, top_k=2) as c:
        answer = c.post("/v1/score", json={"records": rows.to_dict("records")})
        csv_answer = c.post("/v1/score", content=rows.to_csv(index=False), headers={"content-type": "text/csv"})
        list_answer = post_json(c, rows.to_json(orient="records").encode())  # pandas' records, the list alone
        one = c.post("/v1/score", json=rows.iloc[0].to_dict())  # one record as an object, as a client sends a row
    assert answer.status_code == 200 and csv_answer.status_code == 200 and list_answer.status_code == 200
    results = answer.json()["results"]
    assert [r["score"] for r in csv_answer.json()["results"]] == [r["score"] for r in results]
    assert [r["score"] for r in list_answer.json()["results"]] == [r["score"] for r in results]
    assert one.status_code == 200  # alone in its pass, its products round in the last bits otherwise
    np.testing.assert_allclose(one.json()["results"][0]["score"], results[0]["score"], rtol=1e-5)
    np.testing.assert_allclose([r["score"] for r in results], expected["score"], rtol=1e-12)  # request order kept
    assert [int(r["is_anomaly"]) for r in results] == expected["is_anomaly"].tolist()
    first = results[0]["top_features"]
    assert len(first) == 2 and first[0]["column"] in rows.columns and first[0]["share"] >= first[1]["share"]
    assert answer.json()["model"] == read_detector(path)[1]["weights_sha256"]


def test_a_form_with_one_file_scores_as_that_file_sent_as_the_body(served):
    """``curl -F file=@rows.csv``, an HTML form or ``requests.post(files=...)``: it was 415."""
    path, _, X_test = served
    rows = X_test.head(5)
    with client(path) as c:
        body = c.post("/v1/score", content=rows.to_csv(index=False), headers={"content-type": "text/csv"})
        form = c.post("/v1/score", files={"file": ("rows.csv", rows.to_csv(index=False))}, data={"note": "a field"})
        as_json = c.post("/v1/score", files={"file": ("rows.json", rows.to_json(orient="records"), "application/json")})
        bad = rows.astype(object)
        bad.iloc[3, 0] = "twelve"
        named = c.post("/v1/score", files={"file": ("bad.csv", bad.to_csv(index=False))})  # its rows, not records[]
        two = c.post("/v1/score", files=[("a", ("a.csv", b"x\n1\n")), ("b", ("b.csv", b"x\n1\n"))])
        empty = c.post("/v1/score", files={"file": ("rows.csv", b"")})
        none = c.post("/v1/score", data={"note": "no file"}, files={})
        cut = c.post("/v1/score", content=b"--xyz\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.csv\""
                      b"\r\n\r\na\r\n", headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert form.status_code == 200 and as_json.status_code == 200, form.text
    assert form.json()["results"] == body.json()["results"] == as_json.json()["results"]
    assert named.status_code == 422 and "data row 4" in named.json()["error"], named.text
    assert two.status_code == 422 and "the form holds 2 files; send one table" in two.json()["error"]
    assert empty.status_code == 400 and empty.json()["error"] == "the form's file 'rows.csv' is empty"
    assert none.status_code in (400, 415, 422) and "file" in none.json()["error"], none.text
    assert cut.status_code == 422 and "cut short" in cut.json()["error"]


def test_categorical_model_takes_strings_and_names_bad_fields(tmp_path):
    # a column of booleans is categorical; JSON sends its values as true / false
    flags = lambda n, seed: np.random.default_rng(seed).random(n) < 0.3  # noqa: E731
    data = make_kdd_rows(400, 0).drop(columns="label")
    data = data.assign(logged_in=flags(len(data), 0))
    det = AnomalyDetector(**SMALL).fit(data)
    det.save(tmp_path / "kdd")
    rows = make_kdd_rows(5, 5, seed=1).drop(columns="label")
    rows = rows.assign(logged_in=flags(len(rows), 1))
    records = rows.to_dict("records")
    assert {type(r["logged_in"]) for r in records} == {bool} and rows.logged_in.nunique() == 2
    with client(tmp_path / "kdd") as c:
        scores = [r["score"] for r in c.post("/v1/score", json={"records": records}).json()["results"]]
        np.testing.assert_allclose(scores, det.decision_function(rows), rtol=1e-6)
        records[2]["src_bytes"] = "12kb"
        bad = c.post("/v1/score", json={"records": records})
        records[2]["src_bytes"], records[1]["protocol_type"] = 10, ["tcp"]
        bad_category = c.post("/v1/score", json={"records": records})
    assert bad.status_code == 422 and bad.json()["error"] == "records[2]['src_bytes'] must be a number, got a string '12kb'"
    assert bad_category.status_code == 422 and "records[1]['protocol_type']" in bad_category.json()["error"]


@pytest.mark.parametrize("body, headers, status, words", [
    (b"", {}, 400, "empty"),
    (b"{\"records\": [", {}, 400, "malformed JSON"),
    (b"[1, 2]", {}, 422, "records[0] must be an object"),  # a list alone is the records
    (b"3", {}, 422, "'records' list, that list alone, one record"),
    (b"{\"rows\": []}", {}, 422, "'records' list"),
    (b"{\"records\": {\"a\": 1}}", {}, 422, "'records' must be a list"),
    (b"{\"records\": []}", {}, 422, "'records' is empty"),
    (b"{\"records\": [3]}", {}, 422, "records[0] must be an object"),
    (b"{\"records\": [{\"id\": 1}]}", {}, 422, "records[0] is missing column 'mean radius'"),
    (b"x,y\n1,2\n", {"content-type": "text/csv"}, 422, "missing column"),
    (b"a,b\n1\n1,2,3,4\n", {"content-type": "text/csv"}, 422, "malformed CSV"),
    (b"a;b;c\n1;2;3\n", {"content-type": "text/csv"}, 422, "separated by ';'; send them separated by commas"),
    (b"a\tb\n1\t2\n", {"content-type": "text/csv"}, 422, "separated by tabs"),
    (b"1.5,2.5,-3\n4,5,6\n", {"content-type": "text/csv"}, 422, "the CSV body: its first line holds numbers"),
    ("a,b\n1,2\n".encode("utf-16"), {"content-type": "text/csv"}, 422, "the CSV body is not UTF-8 text"),
    (b"<xml/>", {"content-type": "application/xml"}, 415, "application/xml"),
])
def test_bad_requests_are_4xx_naming_the_problem(served, body, headers, status, words):
    with client(served[0]) as c:
        answer = c.post("/v1/score", content=body, headers={"content-type": "application/json", **headers})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and "Traceback" not in answer.text


@pytest.mark.parametrize("value, words", [("1.5", "got a string '1.5'"), (None, "got null"), (True, "got a boolean"),
                                          ([1], "got a list")])
def test_values_are_taken_strictly(served, value, words):
    path, _, X_test = served
    record = X_test.head(1).to_dict("records")[0]
    record["mean area"] = value
    with client(path) as c:
        answer = c.post("/v1/score", json={"records": [record]})
    assert answer.status_code == 422 and answer.json()["error"].startswith("records[0]['mean area'] must be a number")
    assert words in answer.json()["error"]


def test_limits_on_rows_and_body(served):
    path, _, X_test = served
    records = {"records": X_test.head(6).to_dict("records")}
    with client(path, max_rows=5) as c:
        too_many = c.post("/v1/score", json=records)
        csv_too_many = c.post("/v1/score", content=X_test.head(6).to_csv(index=False), headers={"content-type": "text/csv"})
    with client(path, max_body_bytes=1000) as c:
        too_big = c.post("/v1/score", json=records)
    assert too_many.status_code == 413 and "limit is 5" in too_many.json()["error"]
    assert csv_too_many.status_code == 413
    assert too_big.status_code == 413 and "1000 bytes" in too_big.json()["error"]


def test_gzipped_bodies_are_read_and_other_encodings_refused(served):
    """A batch client may gzip a large CSV or JSON body (Content-Encoding: gzip): it was read as
    text and refused as "not UTF-8"; "br" was ignored and its bytes read as CSV."""
    import gzip
    import json

    path, _, X_test = served
    rows = X_test.head(4)
    text, records = rows.to_csv(index=False).encode(), json.dumps({"records": rows.to_dict("records")}).encode()
    with client(path, max_body_bytes=len(records) + 10) as c:
        plain = c.post("/v1/score", content=text, headers={"content-type": "text/csv"}).json()["results"]
        as_gzip = c.post("/v1/score", content=gzip.compress(text),
                         headers={"content-type": "text/csv", "content-encoding": "gzip"})
        as_json = c.post("/v1/score", content=gzip.compress(records),
                         headers={"content-type": "application/json", "content-encoding": "gzip"})
        answers = {name: c.post("/v1/score", content=body, headers={"content-type": "text/csv",
                                                                    "content-encoding": encoding})
                   for name, body, encoding in (("br", text, "br"), ("cut", gzip.compress(text)[:-12], "gzip"),
                                                ("not gzip", text, "gzip"),
                                                ("bomb", gzip.compress(text + b"1" * 100_000), "gzip"))}
    assert as_gzip.status_code == 200 and as_gzip.json()["results"] == plain
    assert as_json.status_code == 200 and [r["score"] for r in as_json.json()["results"]] == [r["score"] for r in plain]
    said = {name: (answer.status_code, answer.json()["error"]) for name, answer in answers.items()}
    assert said["br"] == (415, "Content-Encoding 'br' is not accepted: send the body as it is, or gzip it "
                               "(Content-Encoding: gzip)")
    assert said["cut"] == (400, "the gzip body is truncated")
    assert said["not gzip"][0] == 400 and "not gzip data" in said["not gzip"][1]
    assert said["bomb"][0] == 413 and "once decompressed" in said["bomb"][1]


def test_what_pythons_json_and_pandas_split_send_is_read(served):
    """``requests.post(json=frame.to_dict("records"))`` writes a gap as NaN, which JSON lacks
    (it was "malformed JSON ... char 547"); ``to_json(orient="split")`` was not read at all."""
    import json

    path, _, X_test = served
    rows = X_test.head(3).reset_index(drop=True)
    gap = rows.astype(object).copy()
    gap.iloc[1, 2] = float("nan")
    with client(path) as c:
        as_records = c.post("/v1/score", json={"records": rows.to_dict("records")}).json()
        split = c.post("/v1/score", content=rows.to_json(orient="split"), headers={"content-type": "application/json"})
        nan = c.post("/v1/score", content=json.dumps({"records": gap.to_dict("records")}),
                     headers={"content-type": "application/json"})
        null = c.post("/v1/score", content=gap.to_json(orient="records"), headers={"content-type": "application/json"})
        gap.iloc[1, 2] = float("inf")
        inf = c.post("/v1/score", content=json.dumps(gap.to_dict("records")), headers={"content-type": "application/json"})
        short = c.post("/v1/score", json={"columns": list(rows.columns), "data": [[1.0, 2.0]]})
    assert split.status_code == 200 and split.json() == as_records
    assert (nan.status_code, nan.json()) == (null.status_code, null.json()) == (
        422, {"error": f"records[1][{rows.columns[2]!r}] must be a number, got null (this model does not impute "
                       "missing values)"})
    assert inf.status_code == 422 and inf.json()["error"].startswith("the JSON holds Infinity")
    assert short.status_code == 422 and short.json()["error"] == (
        f"data[0] must be a list of {rows.shape[1]} values, one per column, got 2 values")


def test_a_wrong_path_or_method_names_the_endpoints(served):
    with client(served[0]) as c:
        wrong_path, wrong_method = c.post("/score", content=b"a\n1\n"), c.get("/v1/score")
    assert wrong_path.status_code == 404 and wrong_path.json()["error"] == (
        "POST /score: Not Found; this service answers POST /v1/score, GET /v1/model, /healthz, /readyz and /metrics")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"].startswith("GET /v1/score: Method Not Allowed; this service answers")


def test_api_key_guards_v1_only(served, monkeypatch):
    path, _, X_test = served
    monkeypatch.setenv("AEKIT_API_KEY", "s3cret")
    body = {"records": X_test.head(1).to_dict("records")}
    with client(path) as c:
        assert c.post("/v1/score", json=body).status_code == 401
        assert c.post("/v1/score", json=body, headers={"X-API-Key": "s3cre"}).status_code == 401
        assert c.get("/v1/model").status_code == 401
        assert c.post("/v1/score", json=body, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/v1/model", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200
        assert c.post("/v1/score", json=body).json() == {"error": "missing or wrong x-api-key header"}


def test_model_card_health_and_metrics(served):
    path, X_train, X_test = served
    det, config = read_detector(path)
    with client(path) as c:
        card = c.get("/v1/model").json()
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json()["status"] == "ready"
        for n in (3, 4):
            assert c.post("/v1/score", json={"records": X_test.head(n).to_dict("records")}).status_code == 200
        post_json(c, b"{")
        text = c.get("/metrics").text
    assert [col["name"] for col in card["columns"]] == list(X_train.columns)
    assert card["threshold"] == det.threshold_ and card["weights_sha256"] == config["weights_sha256"]
    assert card["versions"]["aekit_trained"] == config["aekit_version"] and card["training"]["rows"] == len(X_train)
    assert 'aekit_requests_total{endpoint="/v1/score",status="200"} 2' in text
    assert 'aekit_requests_total{endpoint="/v1/score",status="400"} 1' in text
    assert "aekit_rows_scored_total 7" in text
    assert 'aekit_request_duration_seconds_bucket{endpoint="/v1/score",le="+Inf"} 3' in text
    assert f'aekit_model_info{{weights_sha256="{config["weights_sha256"]}"}} 1' in text


def test_queued_requests_are_scored_in_one_pass(served):
    path, _, X_test = served
    model = load_served(path)
    det = model.detector
    metrics = ServiceMetrics()

    async def scenario():
        batcher = MicroBatcher(metrics)
        inputs = [det.adapter_.transform(X_test.iloc[i:i + 1 + i % 3]) for i in range(12)]
        pending = [asyncio.ensure_future(batcher.score(model, x)) for x in inputs]
        await asyncio.sleep(0)  # every request is queued before the scoring loop starts
        runner = asyncio.ensure_future(batcher.run())
        results = await asyncio.gather(*pending)
        runner.cancel()
        return inputs, results

    inputs, results = asyncio.run(scenario())
    assert sum(metrics.batch_rows.counts) == 1  # twelve requests, one pass
    for x, result in zip(inputs, results):
        np.testing.assert_allclose(result.scores, det.score_explain_inputs(x)[0], rtol=1e-6)


def test_hot_reload_takes_a_good_model_and_refuses_a_bad_one(served, tmp_path):
    _, X_train, X_test = served
    path = tmp_path / "model"
    AnomalyDetector(**SMALL).fit(X_train).save(path)
    body = {"records": X_test.head(5).to_dict("records")}
    with TestClient(create_app(path, ServiceOptions(reload_interval=0.05))) as c:
        first = c.get("/v1/model").json()["weights_sha256"]
        # requests keep flowing while a new model is written over the old one
        answers, stop = [], threading.Event()

        def traffic():
            while not stop.is_set():
                answers.append(c.post("/v1/score", json=body).status_code)

        thread = threading.Thread(target=traffic)
        thread.start()
        new = AnomalyDetector(**{**SMALL, "random_state": 1}).fit(X_train)
        new.save(path)
        slot = c.app.state.slot
        for _ in range(200):
            if slot.current.sha != first:
                break
            threading.Event().wait(0.02)
        stop.set()
        thread.join()
        assert answers and set(answers) == {200}  # no request dropped or failed during the swap
        second = c.get("/v1/model").json()["weights_sha256"]
        assert second != first
        np.testing.assert_allclose([r["score"] for r in c.post("/v1/score", json=body).json()["results"]],
                                   new.decision_function(X_test.head(5)), rtol=1e-6)
        # the same weights with a new threshold (`aekit anomaly threshold`): taken too
        new.set_threshold(0.5).save(path)
        for _ in range(200):  # the watch takes it within its interval
            if slot.current.card["threshold"] == 0.5:
                break
            threading.Event().wait(0.02)
        assert c.get("/v1/model").json()["threshold"] == 0.5
        assert all(r["is_anomaly"] for r in c.post("/v1/score", json=body).json()["results"])
        # a bad model (truncated weights) at the same path: refused, the old one keeps serving
        weights = path / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
        (path / "config.json").touch()
        assert slot.refresh() is False
        assert c.get("/v1/model").json()["weights_sha256"] == second
        assert c.post("/v1/score", json=body).status_code == 200

        def refusals() -> int:
            return int(re.search(r'aekit_model_reloads_total\{result="refused"\} (\d+)', c.get("/metrics").text)[1])

        # 1, or 2 where the watch saw the truncated weights before config.json was touched
        seen = refusals()
        assert seen in (1, 2)
        threading.Event().wait(0.3)  # six more polls with nothing new on disk: not tried again
        assert refusals() == seen


def test_serve_command_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    from aekit.cli import main

    assert main(["serve", "--model", str(tmp_path / "none"), "--port", "8799"]) == 2
    assert capsys.readouterr().err.strip() == f"aekit: error: model directory {tmp_path / 'none'} does not exist"


# ---------------------------------------------------------------------- a real server
@pytest.fixture
def live(served):
    """Start the service on a free local port in a thread: ``start(**options)`` gives
    ``(port, app)``; the server stops at the end of the test."""
    import time

    import uvicorn

    from aekit.apps.anomaly.service import listen, server_config

    servers = []

    def start(max_connections: int = 100, **options):
        opts = ServiceOptions(reload_interval=0, **options)
        app = create_app(served[0], opts)
        sock = listen("127.0.0.1", 0)
        server = uvicorn.Server(server_config(app, opts, max_connections, log_level="critical"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.02)
        return sock.getsockname()[1], app

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def _half_sent(port: int, declared: int = 1000):
    import socket

    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              + f"Content-Length: {declared}\r\n\r\n".encode() + b'{"records": [')
    return s


def _get(port: int, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_stalled_uploads_are_timed_out_and_hold_nothing(live):
    import time

    port, _ = live(body_timeout=1.0)
    sockets = [_half_sent(port) for _ in range(20)]
    start = time.monotonic()
    answers = [s.recv(200).split(b"\r\n", 1)[0] for s in sockets]
    assert time.monotonic() - start < 5
    assert set(answers) == {b"HTTP/1.1 408 Request Timeout"}
    for s in sockets:
        s.close()
    status, text = _get(port, "/metrics")
    assert status == 200 and 'endpoint="/v1/score",status="408"} 20' in text


def test_a_client_that_never_finishes_its_headers_is_closed(live):
    import socket
    import time

    port, _ = live(body_timeout=1.0)
    held = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        held.append(s)
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)  # not a byte
    start = time.monotonic()
    assert [s.recv(100) for s in [*held, idle]] == [b""] * 6  # closed by the server
    assert time.monotonic() - start < 5
    assert _get(port, "/healthz")[0] == 200


def test_connections_are_bounded(live):
    port, _ = live(body_timeout=30.0, max_connections=3)
    held = [_half_sent(port) for _ in range(3)]
    status, _ = _get(port, "/healthz")
    for s in held:
        s.close()
    assert status == 503


def test_a_client_gone_mid_body_is_not_a_server_failure(live, caplog):
    import time

    port, _ = live()
    s = _half_sent(port)
    time.sleep(0.2)
    s.close()
    time.sleep(0.5)
    _, text = _get(port, "/metrics")
    assert 'status="499"} 1' in text and 'status="500"' not in text
    assert "Traceback" not in caplog.text and "internal error" not in caplog.text


def test_the_model_card_shows_no_path(served):
    path, _, _ = served
    with client(path) as c:
        card = c.get("/v1/model")
    assert "path" not in card.json() and str(path.parent) not in card.text


@pytest.mark.parametrize("key", ["", "   ", " key", "key\n", "clé"])
def test_a_key_that_cannot_be_sent_is_refused_at_start(served, key, monkeypatch):
    monkeypatch.setenv("AEKIT_API_KEY", key)
    with pytest.raises(DataError, match="AEKIT_API_KEY"):
        create_app(served[0])


def test_the_start_line_says_whether_a_key_is_required(served, monkeypatch, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="aekit.serve")
    with client(served[0]):
        pass
    monkeypatch.setenv("AEKIT_API_KEY", "s3cret")
    with client(served[0]):
        pass
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("serving")]
    assert len(lines) == 2 and "API key: not required" in lines[0] and "API key: required" in lines[1]


def test_replaced_weights_are_noticed_and_readiness_says_so(served, tmp_path):
    import shutil

    _, X_train, _ = served
    path = tmp_path / "model"
    shutil.copytree(served[0], path)
    other = tmp_path / "other"
    AnomalyDetector(**{**SMALL, "random_state": 3}).fit(X_train).save(other)
    with client(path) as c:
        slot = c.app.state.slot
        assert c.get("/readyz").status_code == 200
        # only the weights replaced (another model's): the config's checksum no longer matches
        shutil.copy(other / "model.safetensors", path / "model.safetensors")
        assert slot.refresh() is False and slot.refused is not None
        ready = c.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "model refused"
        assert "checksum" in ready.json()["error"]
        assert c.get("/v1/model").status_code == 200  # the old model still serves
        shutil.copy(other / "config.json", path / "config.json")  # now a whole, good model
        assert slot.refresh() is True
        assert c.get("/readyz").status_code == 200


def test_serve_on_a_taken_port_or_a_bad_host_is_one_line(served, capsys):
    import socket

    from aekit.cli import main

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        code = main(["serve", "--model", str(served[0]), "--port", str(taken.getsockname()[1])])
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Address already in use" in err
    assert main(["serve", "--model", str(served[0]), "--host", "badname.invalid", "--port", "8799"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not resolve" in err


# ---------------------------------------------------------------------- time-series models
def fleet_rows(n: int, seed: int, count: int = 2) -> pd.DataFrame:
    """``count`` machines of two channels (a sine and its cosine at the machine's own level),
    rows interleaved in time order."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    parts = []
    for k in range(count):
        parts.append(pd.DataFrame({
            "machine": f"m{k}", "timestamp": pd.date_range("2024-01-01", periods=n, freq="5min").astype(str),
            "load": np.sin(2 * np.pi * t / 20 + k) + 2 * k + 0.05 * rng.standard_normal(n),
            "temp": np.cos(2 * np.pi * t / 20 + k) + 0.05 * rng.standard_normal(n)}))
    return pd.concat(parts).sort_values(["timestamp", "machine"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def served_fleet(tmp_path_factory):
    from aekit.apps.anomaly import SeriesAnomalyDetector

    path = tmp_path_factory.mktemp("serve_series") / "fleet"
    SeriesAnomalyDetector(time_col="timestamp", id_col="machine", window=16, epochs=3, verbose=0
                          ).fit(fleet_rows(300, 0)).save(path)
    return path


def test_series_requests_score_as_the_cli_scores_the_same_rows(served_fleet, tmp_path):
    from aekit.apps.anomaly.series_jobs import score_series

    rows = fleet_rows(60, 1)
    rows.loc[rows.index[-30:], "load"] += 4  # m0 and m1 jump at the end
    short = pd.DataFrame({"machine": "new", "timestamp": ["2024-01-01 00:00:00", "2024-01-01 00:05:00"],
                          "load": [0.0, 0.1], "temp": [1.0, 0.9]})
    rows = pd.concat([rows, short], ignore_index=True)  # a third machine with fewer rows than a window
    rows.to_csv(tmp_path / "rows.csv", index=False)
    det, _ = read_detector(served_fleet)
    score_series(tmp_path / "rows.csv", det, tmp_path / "out.csv", verbose=0)
    expected = pd.read_csv(tmp_path / "out.csv")
    with client(served_fleet, top_k=1) as c:
        answer = c.post("/v1/score", json={"records": rows.to_dict("records")})
        csv_answer = c.post("/v1/score", content=rows.to_csv(index=False), headers={"content-type": "text/csv"})
        card = c.get("/v1/model").json()
    assert answer.status_code == 200 and csv_answer.status_code == 200, answer.text
    body = answer.json()
    scores = np.array([np.nan if r["score"] is None else r["score"] for r in body["results"]])
    np.testing.assert_allclose(scores, expected["score"], rtol=1e-9)  # nulls where the CLI leaves them empty
    assert [r["score"] for r in csv_answer.json()["results"]] == [r["score"] for r in body["results"]]
    assert [int(r["is_anomaly"]) for r in body["results"]] == expected["is_anomaly"].tolist()
    assert scores[90:120].min() > scores[:60].max()  # the rows in the jump, against those before it
    assert body["results"][-1] == {"score": None, "is_anomaly": False, "top_channels": []}
    top = body["results"][-3]["top_channels"]
    assert len(top) == 1 and top[0]["column"] == "load"  # the jump is in load
    assert body["notes"] == ["series 'new': not in training: scaled by the mean and spread of all the training series",
                             "series 'new': 2 row(s), fewer than one window (16 rows): not scored, "
                             "its scores left empty (NaN)"]
    assert card["kind"].endswith("SeriesAnomalyDetector") and [col["name"] for col in card["columns"]] == ["load", "temp"]
    assert card["series"] == {"time_col": "timestamp", "id_col": "machine", "window": 16, "impute": None,
                              "training_series": 2}


def test_a_stream_client_sends_a_window_and_gets_the_last_rows_score(served_fleet, tmp_path):
    rows = fleet_rows(80, 2, count=1)
    det, _ = read_detector(served_fleet)
    whole = det.decision_function(rows)  # m0's 80 rows as one file
    with client(served_fleet) as c:
        answer = c.post("/v1/score", json=rows.tail(16).to_dict("records")).json()
    assert answer["notes"] == []
    # the same window, scored alone rather than among 33: float32 sums in another order
    assert answer["results"][-1]["score"] == pytest.approx(whole[-1], rel=1e-4)
    repeated = rows.tail(16).to_dict("records")
    repeated.insert(9, repeated[8])  # a clock's slip: scored, with a note naming the row as sent
    with client(served_fleet) as c:
        notes = c.post("/v1/score", json={"records": repeated}).json()["notes"]
        csv_notes = c.post("/v1/score", content=pd.DataFrame(repeated).to_csv(index=False),
                           headers={"content-type": "text/csv"}).json()["notes"]
    assert len(notes) == 1 and "(the first at records[9]," in notes[0], notes
    assert "(the first at data row 10," in csv_notes[0], csv_notes


@pytest.mark.parametrize("change, status, words", [
    (lambda r: r.__setitem__(3, {**r[3], "load": "1.5"}), 422, "records[3]['load'] must be a number, got a string"),
    (lambda r: r.__setitem__(3, {**r[3], "load": None}), 422, "this model does not impute"),
    (lambda r: r.__setitem__(0, {**r[0], "timestamp": None}), 422, "records[0]['timestamp'] must be a string or a "
                                                                   "number, got null"),
    (lambda r: r[1].pop("machine"), 422, "records[1] is missing column 'machine'"),
    (lambda r: r.__setitem__(5, {**r[5], "timestamp": "2023-06-01 00:00:00"}), 422, "times go back at records[5] ("),
    (lambda r: r.__setitem__(5, {**r[5], "timestamp": "soon"}), 422, "soon"),
])
def test_bad_series_requests_are_422_naming_the_row(served_fleet, change, status, words):
    records = fleet_rows(20, 3).to_dict("records")
    change(records)
    with client(served_fleet) as c:
        answer = c.post("/v1/score", json={"records": records})
    assert answer.status_code == status and words in answer.json()["error"], answer.text


def test_a_bad_series_request_fails_alone_in_a_shared_pass(served_fleet):
    model = load_served(served_fleet)
    good = fleet_rows(20, 4)
    bad = good.iloc[::-1].reset_index(drop=True)  # times going back

    async def scenario():
        batcher = MicroBatcher(ServiceMetrics())
        pending = [asyncio.ensure_future(batcher.score(model, x)) for x in (good, bad, good)]
        await asyncio.sleep(0)
        runner = asyncio.ensure_future(batcher.run())
        results = await asyncio.gather(*pending, return_exceptions=True)
        runner.cancel()
        return results

    first, failed, last = asyncio.run(scenario())
    assert isinstance(failed, DataError) and "time" in str(failed)
    np.testing.assert_allclose(first.scores, model.detector.decision_function(good), rtol=1e-4)  # another thread
    np.testing.assert_array_equal(first.scores, last.scores)


def test_a_one_series_model_needs_a_window_per_request(tmp_path):
    from aekit.apps.anomaly import SeriesAnomalyDetector

    rows = fleet_rows(200, 5, count=1).drop(columns="machine")
    SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2, verbose=0).fit(rows).save(tmp_path / "one")
    with client(tmp_path / "one") as c:
        short = c.post("/v1/score", json=rows.head(10).to_dict("records"))
        enough = c.post("/v1/score", content=rows.head(16).to_csv(index=False), headers={"content-type": "text/csv"})
    assert short.status_code == 422 and short.json()["error"] == ("the series has 10 rows, too few for one window of this "
                                                                  "model (16 rows): score at least 16 rows")
    assert enough.status_code == 200 and len(enough.json()["results"]) == 16


# ---------------------------------------------------------------------- image models
def square(dark: bool, seed: int, side: int = 16, spot: tuple[int, int] | None = None) -> bytes:
    """A PNG of a grey image: noise around a bright square (dark where ``dark``); ``spot``: a
    bright 4x4 patch at that (x, y) besides."""
    import io

    from PIL import Image

    image = np.random.default_rng(seed).integers(0, 60, (16, 16), dtype=np.uint8)
    image[4:12, 4:12] = 20 if dark else 200
    if spot is not None:
        image[spot[1]:spot[1] + 4, spot[0]:spot[0] + 4] = 255
    buffer = io.BytesIO()
    Image.fromarray(image).resize((side, side), Image.Resampling.NEAREST).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def served_images(tmp_path_factory):
    from aekit.apps.anomaly import ImageAnomalyDetector

    root = tmp_path_factory.mktemp("serve_images")
    (root / "train").mkdir()
    for i in range(40):
        (root / "train" / f"{i:02d}.png").write_bytes(square(False, i))
    ImageAnomalyDetector(epochs=2, n_estimators=1, verbose=0).fit(str(root / "train")).save(root / "m")
    return root


def test_image_requests_score_as_the_cli_scores_the_files(served_images, tmp_path):
    import base64

    files = [square(i % 3 == 0, 100 + i) for i in range(6)]  # every third image has a dark square
    (tmp_path / "new").mkdir()
    for i, data in enumerate(files):
        (tmp_path / "new" / f"{i}.png").write_bytes(data)
    score_file(tmp_path / "new", served_images / "m", tmp_path / "out.csv", verbose=0)
    expected = pd.read_csv(tmp_path / "out.csv").sort_values("image")
    with client(served_images / "m") as c:
        one = [c.post("/v1/score", content=data, headers={"content-type": "image/png"}) for data in files]
        many = c.post("/v1/score", json={"images": [base64.b64encode(data).decode() for data in files]})
        card = c.get("/v1/model").json()
    assert all(a.status_code == 200 for a in one) and many.status_code == 200, many.text
    scores = [r["score"] for r in many.json()["results"]]
    np.testing.assert_allclose(scores, expected["score"], rtol=1e-4)  # the CLI runs the saved ONNX graph
    np.testing.assert_allclose([a.json()["results"][0]["score"] for a in one], scores, rtol=1e-5)
    assert [r["is_anomaly"] for r in many.json()["results"]] == expected["is_anomaly"].astype(bool).tolist()
    assert min(scores[0], scores[3]) > max(scores[1], scores[2], scores[4], scores[5])
    assert card["image"] == {"channels": 1, "height": 16, "width": 16} and card["training"]["rows"] == 40


def test_a_form_of_image_files_scores_each_in_order(served_images):
    files = [square(i % 2 == 0, 200 + i) for i in range(3)]
    with client(served_images / "m", max_rows=3) as c:
        one_by_one = [c.post("/v1/score", content=data, headers={"content-type": "image/png"}).json()["results"][0]
                      for data in files]
        form = c.post("/v1/score", files=[("image", (f"{i}.png", data, "image/png")) for i, data in enumerate(files)])
        broken = c.post("/v1/score", files=[("image", ("ok.png", files[0])), ("image", ("bad.png", b"not an image"))])
        too_many = c.post("/v1/score", files=[("image", (f"{i}.png", files[0])) for i in range(4)])
    assert form.status_code == 200, form.text
    np.testing.assert_allclose([r["score"] for r in form.json()["results"]], [r["score"] for r in one_by_one], rtol=1e-5)
    assert broken.status_code == 422 and "the form's file 'bad.png' cannot be decoded" in broken.json()["error"]
    assert too_many.status_code == 413


def test_an_image_answer_points_at_its_anomaly_in_the_images_own_pixels(served_images):
    with client(served_images / "m") as c:
        answer = c.post("/v1/score", content=square(False, 7, side=64, spot=(0, 12)),  # sent at 4x the model's size
                        headers={"content-type": "image/png"}).json()
    peak = answer["results"][0]["peak"]
    assert 0 <= peak["x"] < 16 and 48 <= peak["y"] < 64, peak  # the patch: x 0-15, y 48-63 at 64x64


@pytest.mark.parametrize("body, headers, status, words", [
    (b"not an image", {"content-type": "image/png"}, 422, "the request body cannot be decoded as an image"),
    (b'{"images": ["aGVsbG8=", "***"]}', {}, 422, "images[1] is not valid base64"),
    (b'{"images": ["aGVsbG8="]}', {}, 422, "images[0] cannot be decoded as an image"),
    (b'{"images": [3]}', {}, 422, "images[0] must be a base64-encoded image file"),
    (b'{"records": []}', {}, 422, "an 'images' list"),
    (b"a,b\n1,2\n", {"content-type": "text/csv"}, 415, "send an image file"),
])
def test_bad_image_requests_are_4xx_naming_the_problem(served_images, body, headers, status, words):
    with client(served_images / "m", max_rows=2) as c:
        answer = c.post("/v1/score", content=body, headers={"content-type": "application/json", **headers})
        too_many = c.post("/v1/score", json={"images": ["aGVsbG8="] * 3})
    assert answer.status_code == status and words in answer.json()["error"], answer.text
    assert too_many.status_code == 413 and "3 images in one request" in too_many.json()["error"]


def test_an_image_answer_carries_its_heat_map_when_asked(served_images, served):
    import base64
    import io

    from PIL import Image

    data = square(False, 9, spot=(0, 12))
    with client(served_images / "m") as c:
        plain = c.post("/v1/score", content=data, headers={"content-type": "image/png"}).json()["results"][0]
        drawn = c.post("/v1/score?heatmap=true", content=data, headers={"content-type": "image/png"}).json()
        bad = c.post("/v1/score?heatmap=maybe", content=data, headers={"content-type": "image/png"})
    with client(served[0]) as c:
        table = c.post("/v1/score?heatmap=true", json={"records": served[2].head(1).to_dict("records")})
    panel = Image.open(io.BytesIO(base64.b64decode(drawn["results"][0]["heatmap"])))
    assert "heatmap" not in plain and drawn["results"][0]["score"] == plain["score"]
    assert panel.format == "PNG" and panel.size == (231, 112)  # the image and its map, 7x, side by side
    assert bad.status_code == 400 and "heatmap must be true or false" in bad.json()["error"]
    assert table.status_code == 422 and "only an image model draws heat maps" in table.json()["error"]
