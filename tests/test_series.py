"""The time-series detector: anomalies injected into a sine are found, scores do not depend
on how a file is chunked, channels are explained, and the CLI trains, scores and reports."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aekit.apps.anomaly import SeriesAnomalyDetector, load_detector
from aekit.cli import main
from aekit.errors import DataError

PERIOD, WINDOW = 40, 32
FAST = dict(window=WINDOW, epochs=15, verbose=0)


def sine(n: int, seed: int, start: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(start, start + n)
    return np.sin(2 * np.pi * t / PERIOD) + 0.05 * rng.standard_normal(n)


def with_time(values: np.ndarray, start: str = "2024-01-01") -> pd.DataFrame:
    values = values.reshape(len(values), -1)
    frame = pd.DataFrame(values, columns=["value"] if values.shape[1] == 1 else [f"c{j}" for j in range(values.shape[1])])
    frame.insert(0, "timestamp", pd.date_range(start, periods=len(values), freq="5min").astype(str))
    return frame


@pytest.fixture(scope="module")
def fitted() -> SeriesAnomalyDetector:
    return SeriesAnomalyDetector(**FAST).fit(sine(3000, 0))


# the anomalies, each in rows 1000-1040 of a 2000-row continuation of the sine
def _spike(x: np.ndarray) -> None:
    x[1020] += 4.0


def _level_shift(x: np.ndarray) -> None:
    x[1000:1040] += 1.5


def _frequency_change(x: np.ndarray) -> None:
    t = np.arange(40)
    x[1000:1040] = np.sin(2 * np.pi * t / (PERIOD / 3)) + 0.05 * np.random.default_rng(5).standard_normal(40)


@pytest.mark.parametrize("inject", [_spike, _level_shift, _frequency_change])
def test_injected_anomalies_are_found(fitted, inject):
    x = sine(2000, 1, start=3000)
    inject(x)
    scores = fitted.decision_function(x)
    inside, outside = scores[1000:1041], np.r_[scores[:950], scores[1100:]]
    assert inside.max() > np.quantile(outside, 0.999), inject.__name__
    assert inside.max() > fitted.threshold_
    # the clean stretch stays mostly unflagged: the fpr:0.01 threshold bounds the 14 windows of the
    # held-out series; on 6,000 fresh clean rows it flags 0-3.8% (6 seeds, mean 1.3%; their own
    # 99th percentile, the threshold before 0.9.14, flagged 0-10.2%, mean 3.9%)
    assert (scores[:950] > fitted.threshold_).mean() < 0.05


def test_every_row_is_scored_and_chunks_do_not_change_scores(fitted):
    x = sine(1000, 2, start=3000)
    whole = fitted.decision_function(x)
    assert whole.shape == (1000,) and np.isfinite(whole).all()
    for piece in (1, 7, 333):
        stream = fitted.stream(per_channel=False)
        parts = [stream.feed(x[a:a + piece])[0] for a in range(0, len(x), piece)]
        parts.append(stream.finish()[0])
        np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-5)


def test_saved_model_scores_the_same_and_the_training_rows_set_the_threshold(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    x = sine(500, 3)
    np.testing.assert_allclose(again.decision_function(x), fitted.decision_function(x), rtol=1e-6)
    assert len(fitted.decision_scores_) == 3000
    # "fpr:0.01": a bound over the held-out (last 15%) training rows, read a window at a time
    # (neighbouring rows share windows), never below their own 99th percentile; kept with the model
    assert fitted.threshold_rule_.span == WINDOW and again.threshold_rule_ == fitted.threshold_rule_
    assert fitted.threshold_ >= np.quantile(fitted.decision_scores_[-450:], 0.99) and again.threshold_ == fitted.threshold_
    assert fitted.threshold_rule_.describe() == "false-alarm rate 0.01 on held-out clean data, a bound over its windows of 32 rows"


def test_a_multichannel_anomaly_is_explained_by_its_channel():
    rng = np.random.default_rng(0)
    base = np.stack([sine(2500, 0), np.cos(np.arange(2500) / 7), rng.standard_normal(2500) * 0.1], 1)
    det = SeriesAnomalyDetector(**FAST).fit(pd.DataFrame(base, columns=["a", "b", "c"]))
    test = np.stack([sine(1500, 1), np.cos(np.arange(2500, 4000) / 7), rng.standard_normal(1500) * 0.1], 1)
    test[700:740, 1] += 2.0
    scores, parts = det.score_explain(pd.DataFrame(test, columns=["a", "b", "c"]))
    assert scores[700:740].mean() > 3 * np.median(scores)
    assert list(parts.columns) == ["a", "b", "c"]
    assert parts.iloc[700:740].sum().idxmax() == "b"


def test_the_threshold_bounds_the_false_alarms_of_new_rows_of_a_stationary_series(fitted):
    """Rows within a window score alike, so the held-out stretch's 450 rows are 14 samples,
    not 450: their own 99th percentile flagged 7% of these fresh rows (0-10% over 6 seeds); the
    bound over the windows flags under 1% (0-3.8%, mean 1.3%)."""
    scores = fitted.decision_function(sine(6000, 100, start=3000))
    held_out_quantile = np.quantile(fitted.decision_scores_[-450:], 0.99)
    assert (scores > fitted.threshold_).mean() < 0.01 < (scores > held_out_quantile).mean()


def test_set_threshold_on_a_clean_series_bounds_it_the_same_way(fitted):
    from copy import deepcopy

    det = deepcopy(fitted)
    clean = sine(2000, 7, start=3000)
    det.set_threshold("fpr:0.01", clean)
    assert det.threshold_rule_.span == WINDOW and det.threshold_ >= np.quantile(det.decision_function(clean), 0.99)
    assert (det.decision_function(sine(4000, 8, start=5000)) > det.threshold_).mean() < 0.02
    det.set_threshold("contamination:0.05")  # PyOD's meaning: a share of the training rows, no bound
    assert det.threshold_rule_.span == 1 and (det.decision_scores_ > det.threshold_).mean() == pytest.approx(0.05, abs=0.01)


def test_a_short_held_out_stretch_gets_a_wide_bound_and_a_note(tmp_path):
    from aekit import ModelFileError
    from aekit.errors import DataNotice

    from .conftest import rewrite_config

    with pytest.warns(DataNotice, match=r"reads 86 clean rows, under 4 windows of 32: a bound from so few is "
                                        r"wide.*about 854 rows or more"):
        det = SeriesAnomalyDetector(**FAST).fit(sine(400, 0))
    assert det.threshold_ > np.quantile(det.decision_scores_[-86:], 0.99)
    det.save(tmp_path / "m")
    rewrite_config(tmp_path / "m", lambda c: c["state"]["threshold"].__setitem__("span", "32"))
    with pytest.raises(ModelFileError, match="the threshold's span must be an integer >= 2 of an fpr rule"):
        load_detector(tmp_path / "m")


@pytest.mark.parametrize("make, message", [
    (lambda f: f.drop(columns="timestamp"), "no time column 'timestamp'"),
    (lambda f: f.iloc[::-1], "times go back at data row 2"),
    (lambda f: f.assign(timestamp=f.timestamp.where(f.index % 10 != 5, f.timestamp.shift(1))), "repeats at data row 6"),
    (lambda f: pd.concat([f.iloc[200:], f.iloc[:200]]), "times go back at data row 201"),
    (lambda f: f.assign(value=1.0), "every channel of the training series is constant"),
    (lambda f: f.assign(value=f.value.where((f.index < 100) | (f.index > 120))), "21 missing"),
    (lambda f: f.assign(value=f.value.astype(object).where(f.index != 9, "n/a")), "marks missing numbers with 'n/a' (1 row)"),
    (lambda f: f.assign(value=f.value.astype(object).where(f.index != 9, "x")),
     "holds a non-number ('x', data row 10): every column but the time is a channel; leave it out (--drop-cols value)"),
    (lambda f: f.assign(timestamp=f.timestamp.where(f.index != 3, "yesterday")), "not a time"),
    (lambda f: f.iloc[:40], "too few for 8 windows of 64 rows"),
    (lambda f: f.assign(timestamp=f.timestamp.astype(object).where(f.index != 7, 1_700_000_000)),
     "column 'timestamp' holds both numbers and text (data row 8: 1700000000 after '2024-01-01 00:00:00')"),
])
def test_bad_series_get_one_line(make, message):
    frame = make(with_time(sine(400, 0)))
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        SeriesAnomalyDetector(time_col="timestamp", epochs=1).fit(frame)
    assert "\n" not in str(info.value)


def test_gaps_are_accepted_with_a_notice(fitted):
    frame = with_time(sine(600, 0))
    stamps = pd.to_datetime(frame.timestamp)
    frame["timestamp"] = (stamps + pd.to_timedelta(np.where(np.arange(600) >= 300, 3, 0), unit="h")).astype(str)
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(frame)
    assert any("1 gap(s)" in n for n in det.adapter_.notices_)


def test_a_real_clocks_few_slips_are_read_in_file_order_with_a_notice():
    """NAB's machine-temperature series goes back 55 minutes once; its AWS series repeat a time
    11 times in 4,730 rows. Such files are read in file order, with a notice naming the first."""
    frame = with_time(sine(600, 0))
    stamps = pd.to_datetime(frame.timestamp)
    frame["timestamp"] = stamps.where(frame.index < 300, stamps - pd.Timedelta("1h")).astype(str)
    frame.loc[100, "timestamp"] = frame.loc[99, "timestamp"]
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(frame)
    assert any(n.startswith("2 row(s) repeat the time before or go back at most an hour (the first at data row 101, "
                            "2024-01-01 08:15:00 after 2024-01-01 08:15:00)") for n in det.adapter_.notices_)
    np.testing.assert_array_equal(det.decision_function(frame), det.decision_function(with_time(sine(600, 0))))
    numeric = frame.assign(timestamp=np.r_[np.arange(300.0), np.arange(300.0) - 2])
    with pytest.raises(DataError, match="times go back at data row 301"):  # no clock to set back: out of order
        SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=1).fit(numeric)
    # Unix times (seconds, or milliseconds) are a clock: the same slips, named with every digit
    unix = (pd.to_datetime(frame.timestamp) - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")
    for scale in (1, 1000):
        det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(frame.assign(timestamp=unix * scale))
        when = unix[100] * scale
        assert any(n.startswith("2 row(s) repeat the time before or go back at most an hour (the first at data row "
                                f"101, {when} after {when})") for n in det.adapter_.notices_)
    clean = (pd.to_datetime(with_time(sine(600, 0)).timestamp) - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")
    back = clean.where(frame.index < 300, clean - 3901)  # a step back of 3,601 s: out of order
    with pytest.raises(DataError, match=rf"times go back at data row 301 \({clean[300] - 3901} after {clean[299]}\)"):
        SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=1).fit(frame.assign(timestamp=back))


def test_a_pandas_series_indexed_by_its_times_is_a_one_channel_table():
    """``df.set_index("timestamp")["value"]``, as pandas keeps a series: it was refused as "an
    array" by a model that reads its times from that column."""
    frame = with_time(sine(400, 0))
    frame["timestamp"] = pd.to_datetime(frame.timestamp)
    indexed = frame.set_index("timestamp")["value"]
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(indexed)
    assert det.channels_ == ["value"]
    np.testing.assert_array_equal(det.decision_function(indexed), det.decision_function(frame))


def test_times_with_changing_utc_offsets_are_read_as_the_instants_they_are():
    """A local clock written with its offset (-05:00, then -04:00 from the change to summer
    time) was refused as 'not a time'; in UTC it runs on without a slip or a note."""
    stamps = pd.date_range("2014-03-08 00:00", periods=600, freq="5min", tz="America/New_York")
    frame = pd.DataFrame({"timestamp": [t.isoformat() for t in stamps], "value": sine(600, 0)})
    assert frame.timestamp.str[-6:].nunique() == 2
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(frame)
    assert det.adapter_.notices_ == [] and det.adapter_.interval_ == 300.0
    np.testing.assert_array_equal(det.decision_function(frame), det.decision_function(with_time(sine(600, 0))))


def test_day_first_dates_are_read_day_first_where_month_first_would_go_back():
    """13/01/2014 can only be day first; 12/01/2014 was read as 1 December and refused."""
    frame = pd.DataFrame({"timestamp": pd.date_range("2014-01-01", periods=400, freq="h").strftime("%d/%m/%Y %H:%M"),
                          "value": sine(400, 0)})
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(frame)
    assert det.adapter_.interval_ == 3600.0 and det.adapter_.notices_ == []
    us = frame.assign(timestamp=pd.date_range("2014-01-01", periods=400, freq="h").strftime("%m/%d/%Y %H:%M"))
    assert SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(us).adapter_.interval_ == 3600.0


@pytest.mark.parametrize("written", ["%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%d.%m.%Y %H:%M", "%d.%m.%y %H:%M",
                                     "%m/%d/%y %I:%M %p", "%b %d, %Y %I:%M%p"])
def test_text_times_are_read_exactly_and_day_first_where_that_leaves_no_gaps(written):
    """Eight days of half-hour rows: both readings are in order, and day first was read as
    month first, each day a month (7 gaps of 30 days in a regular series). Two-digit years
    and 12-hour clocks, which pandas guesses no format for, are read exactly too."""
    times = pd.date_range("2014-01-01", periods=400, freq="30min")
    frame = pd.DataFrame({"timestamp": times.strftime(written), "value": sine(400, 0)})
    adapter = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=1).fit(frame).adapter_
    assert adapter.interval_ == 1800.0 and adapter.notices_ == []
    np.testing.assert_array_equal(adapter._times(frame, np.arange(400)), times.to_numpy("datetime64[s]").astype(float))


def test_a_model_reads_new_times_in_the_order_its_training_times_were_read(tmp_path):
    """Two rows, 23:30 on 1 March and midnight on 2 March, written day first, are in order
    read either way; a model that read its training times day first reads them so too."""
    times = pd.date_range("2014-03-01", periods=400, freq="30min")
    frame = pd.DataFrame({"timestamp": times.strftime("%d/%m/%Y %H:%M"), "value": sine(400, 0)})
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=1).fit(frame)
    det.save(tmp_path / "m")
    loaded = load_detector(tmp_path / "m")
    assert det.adapter_.day_first_ is True and loaded.adapter_.day_first_ is True
    pair = frame.iloc[47:49]
    assert list(pair.timestamp) == ["01/03/2014 23:30", "02/03/2014 00:00"]
    expected = times[47:49].to_numpy("datetime64[s]").astype(float)
    np.testing.assert_array_equal(loaded.adapter_.times(pair), expected)
    from aekit.errors import ModelFileError

    from .conftest import rewrite_config

    rewrite_config(tmp_path / "m", lambda c: c["adapter"].__setitem__("day_first", "yes"))
    with pytest.raises(ModelFileError, match="the series' day_first must be true, false or null, got 'yes'"):
        load_detector(tmp_path / "m")
    loaded.adapter_.day_first_ = None  # a model saved before 0.9.10: month first, and a note saying so
    assert loaded.adapter_.times(pair)[0] == pd.Timestamp("2014-01-03 23:30").timestamp()
    assert loaded.adapter_.notices_ == ["times such as '01/03/2014 23:30' read month first (2014-01-03); read day "
                                        "first (2014-03-01) they would be in order too: write the times as ISO 8601 "
                                        "(YYYY-MM-DD) to leave no doubt"]


def test_stream_of_tables_matches_the_whole_and_checks_times_across_pieces():
    frame = with_time(sine(600, 0))
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=2).fit(frame)
    new = with_time(sine(300, 1, start=600), start="2024-01-06 05:00")
    stream = det.stream()
    parts = [stream.feed(piece)[0] for piece in (new.iloc[:100], new.iloc[100:])]
    np.testing.assert_allclose(np.concatenate([*parts, stream.finish()[0]]), det.decision_function(new), rtol=1e-5)
    stream = det.stream()
    stream.feed(new.iloc[100:200])
    with pytest.raises(DataError, match="times go back at data row 101"):
        stream.feed(new.iloc[:100])


def test_cli_trains_scores_in_chunks_and_reports(tmp_path, capsys):
    train, test = with_time(sine(1500, 0)), with_time(sine(1200, 1, start=1500), start="2024-01-06 05:00")
    test.loc[600:640, "value"] += 1.5
    test["label"] = ((test.index >= 600) & (test.index <= 640)).astype(int)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    m = str(tmp_path / "m")
    assert main(["anomaly", "train", str(tmp_path / "train.csv"), "--time-col", "timestamp", "--window", "32",
                 "--out", m, "--epochs", "10", "--quiet"]) == 0
    outputs = []
    for chunk in ("50", "100000"):
        out = tmp_path / f"s{chunk}.csv"
        assert main(["anomaly", "score", str(tmp_path / "test.csv"), "--model", m, "--out", str(out),
                     "--chunk-rows", chunk, "--label-col", "label", "--quiet"]) == 0
        outputs.append(pd.read_csv(out))
    a, b = outputs
    capsys.readouterr()
    test.assign(value=test.value * 10).to_csv(tmp_path / "unit.csv", index=False)  # a channel in another unit
    assert main(["anomaly", "score", str(tmp_path / "unit.csv"), "--model", m, "--out", str(tmp_path / "u.csv")]) == 0
    assert "of the time: does this data differ from the training data" in capsys.readouterr().out
    assert list(a.columns) == ["timestamp", "score", "is_anomaly", "top_channels", "label"]
    assert len(a) == 1200 and (a.timestamp == test.timestamp).all()
    np.testing.assert_allclose(a.score, b.score, rtol=1e-5)
    assert a.score[600:641].mean() > 3 * a.score.median()
    assert main(["anomaly", "eval", str(tmp_path / "test.csv"), "--model", m, "--label-col", "label",
                 "--report-dir", str(tmp_path / "rep"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    auc = float(next(line for line in printed.splitlines() if line.startswith("AUC-ROC")).split()[1])
    assert auc > 0.9
    assert (tmp_path / "rep" / "series.png").stat().st_size > 10_000 and not (tmp_path / "rep" / "fleet.png").exists()
    # the level shift is one flagged event, the highest, around rows 600-640 (a window's spread on each side)
    events = pd.read_csv(tmp_path / "rep" / "events.csv")
    assert list(events.columns) == ["start", "end", "rows", "peak", "max_score", "top_channel"]
    top = events.iloc[0]
    assert test.timestamp[600 - 32] <= top.start <= test.timestamp[600] and test.timestamp[640] <= top.end
    assert top.end <= test.timestamp[640 + 32] and top.peak in set(test.timestamp[600:641]) and top.top_channel == "value"
    assert f"flagged events: {len(events)} (all in events.csv), the highest:\n  {top.start} to {top.end}" in printed
    # against the labels, events count as an operator counts incidents
    import json

    counted = json.loads((tmp_path / "rep" / "metrics.json").read_text())["events"]
    assert counted["labelled"] == 1 and counted["found"] == 1 and counted["flagged"] == len(events)
    assert counted["false"] == sum(not test.label[(test.timestamp >= e.start) & (test.timestamp <= e.end)].any()
                                   for e in events.itertuples())
    assert f"labelled events found: 1 of 1; flagged events with no labelled row: {counted['false']} of " in printed


def test_the_convolutional_window_network_finds_a_level_shift_and_reloads(tmp_path):
    det = SeriesAnomalyDetector(network="conv", **FAST).fit(sine(2000, 0))
    x = sine(1500, 1, start=2000)
    _level_shift(x)
    scores = det.decision_function(x)
    assert scores[1000:1041].max() > np.quantile(np.r_[scores[:950], scores[1100:]], 0.999)
    det.save(tmp_path / "m")
    np.testing.assert_allclose(load_detector(tmp_path / "m").decision_function(x), scores, rtol=1e-6)


# ---------------------------------------------------------------- several series in one table
# (scores compared at rtol 1e-4: windows scored in other batches sum in another float32 order)
def machines(n: int, seed: int, count: int = 3, start: str = "2024-01-01") -> pd.DataFrame:
    """``count`` machines' sines at their own levels and phases, rows sorted by machine."""
    parts = []
    for k in range(count):
        frame = with_time(sine(n, seed + k, start=7 * k) + 3 * k, start=start)
        parts.append(frame.assign(machine=f"m{k}")[["machine", "timestamp", "value"]])
    return pd.concat(parts, ignore_index=True)


def interleaved(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["timestamp", "machine"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def fleet() -> SeriesAnomalyDetector:
    return SeriesAnomalyDetector(time_col="timestamp", id_col="machine", **FAST).fit(interleaved(machines(900, 0)))


def test_each_series_is_scored_alone_in_the_tables_row_order(fleet):
    train = interleaved(machines(900, 0))
    assert fleet.adapter_.describe() == "3 series (by 'machine') of 1 channel(s) (value)"
    # training scores follow the training table's rows, as scoring that table does
    np.testing.assert_allclose(fleet.decision_scores_, fleet.decision_function(train), rtol=1e-4)
    new = machines(500, 10, start="2024-02-01")
    new.loc[(new.machine == "m1") & (new.index.isin(range(700, 720))), "value"] += 2.0
    blocked, mixed = new, interleaved(new)
    scores = fleet.decision_function(blocked)
    by_row = pd.Series(fleet.decision_function(mixed), index=pd.MultiIndex.from_frame(mixed[["machine", "timestamp"]]))
    np.testing.assert_allclose(by_row.loc[pd.MultiIndex.from_frame(blocked[["machine", "timestamp"]])], scores,
                               rtol=1e-4)
    # a series' scores do not depend on the other series in the table (windows never cross)
    alone = blocked[blocked.machine == "m1"]
    np.testing.assert_allclose(fleet.decision_function(alone), scores[alone.index], rtol=1e-4)
    inside = scores[700:720]
    assert inside.min() > fleet.threshold_ and inside.min() > np.quantile(np.delete(scores, range(650, 770)), 0.99)


@pytest.mark.parametrize("layout", [lambda f: f, interleaved])
def test_a_table_of_series_streamed_in_chunks_scores_as_the_whole(fleet, layout):
    new = layout(machines(300, 20, start="2024-02-01"))
    whole = fleet.decision_function(new)
    last_rows = {key: int(rows.index[-1]) for key, rows in new.groupby("machine")}
    for piece, ends in ((5, None), (7, last_rows), (333, last_rows)):
        stream = fleet.stream(per_channel=False, last_rows=ends)
        parts = [stream.feed(new.iloc[a:a + piece])[0] for a in range(0, len(new), piece)]
        parts.append(stream.finish()[0])
        np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-4)


def test_a_series_that_ends_lets_its_rows_go(fleet):
    new = machines(300, 20, start="2024-02-01")  # m0's rows, then m1's, then m2's
    held = fleet.stream(per_channel=False).feed(new.iloc[:350])[0]
    assert len(held) <= 300 - WINDOW  # m0's last rows wait for m0's end: the end of the table
    ends = fleet.stream(per_channel=False, last_rows={"m0": 299, "m1": 599, "m2": 899})
    assert len(ends.feed(new.iloc[:350])[0]) == 300 + 50 - WINDOW  # m0 ended at its last row: all its rows are out
    with pytest.raises(DataError, match="series 'm0' has a row at data row 351, after its end"):
        ends.feed(new.iloc[:50])


def test_bad_tables_of_series_get_one_line_naming_the_series_and_row(fleet):
    new = machines(300, 20, start="2024-02-01")
    with pytest.raises(DataError, match="empty series ID at data row 6"):
        fleet.decision_function(new.assign(machine=new.machine.where(new.index != 5)))
    back = new.copy()
    back.loc[400, "timestamp"] = "2023-01-01 00:00:00"
    with pytest.raises(DataError, match="series 'm1': times go back at data row 401"):
        fleet.decision_function(back)
    with pytest.raises(DataError, match="no series ID column 'machine'"):
        fleet.decision_function(new.drop(columns="machine"))
    with pytest.raises(DataError, match="both 'timestamp'"):
        SeriesAnomalyDetector(time_col="timestamp", id_col="timestamp").fit(new)


def test_a_series_shorter_than_one_window_is_left_unscored_not_fatal(fleet, tmp_path, capsys):
    from aekit.errors import DataNotice

    new = machines(300, 20, start="2024-02-01").iloc[:620]  # m2 has 20 rows, fewer than a window
    with pytest.warns(DataNotice, match=r"1 series not scored, each shorter than one window .* \(series \['m2'\]\)"):
        scores = fleet.decision_function(new)
    assert np.isnan(scores[600:]).all() and np.isfinite(scores[:600]).all()
    np.testing.assert_allclose(scores[:600], fleet.decision_function(new.iloc[:600]), rtol=1e-4)
    with pytest.warns(DataNotice):
        assert (fleet.predict(new)[600:] == 0).all()
    # the CLI: the job goes on, the short series' scores are empty, a note names it
    interleaved(new).to_csv(tmp_path / "new.csv", index=False)
    fleet.save(tmp_path / "m")
    assert main(["anomaly", "score", str(tmp_path / "new.csv"), "--model", str(tmp_path / "m"), "--out",
                 str(tmp_path / "s.csv"), "--chunk-rows", "50", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"note: series 'm2': 20 row(s), fewer than one window ({WINDOW} rows): not scored" in printed
    assert "'m2' (not scored)" in printed  # in the most flagged series, not "0 of 20"
    scored = pd.read_csv(tmp_path / "s.csv")
    short = scored.machine == "m2"
    assert scored.score[short].isna().all() and scored.top_channels[short].isna().all()
    assert (scored.is_anomaly[short] == 0).all() and scored.score[~short].notna().all()
    # training leaves such a series out, with a note; its training scores are NaN
    train = pd.concat([machines(900, 0), machines(10, 5).iloc[:10].assign(machine="new")], ignore_index=True)
    det = SeriesAnomalyDetector(time_col="timestamp", id_col="machine", **FAST).fit(train)
    assert det.adapter_.notices_ == [f"series 'new': 10 row(s), fewer than one window ({WINDOW} rows): "
                                     "left out of training"]
    assert np.isnan(det.decision_scores_[-10:]).all() and np.isfinite(det.decision_scores_[:-10]).all()
    assert np.isfinite(det.threshold_) and (det.labels_[-10:] == 0).all()
    assert det.adapter_.n_series_ == train.machine.nunique() - 1  # the series learned from


def test_times_and_series_ids_kept_in_the_index_are_read_from_it():
    """pandas keeps a series' times as its index (``set_index("timestamp")``): time_col naming
    the index was "no time column 'timestamp'"."""
    frame = with_time(sine(400, 0))
    det = SeriesAnomalyDetector(time_col="timestamp", **FAST).fit(frame.set_index("timestamp"))
    np.testing.assert_allclose(det.decision_function(frame.set_index("timestamp")), det.decision_function(frame),
                               rtol=1e-6)
    two = pd.concat([frame.assign(machine="a"), frame.assign(machine="b")], ignore_index=True)
    fleet = SeriesAnomalyDetector(time_col="timestamp", id_col="machine", **FAST).fit(
        two.set_index(["machine", "timestamp"]))
    assert fleet.adapter_.n_series_ == 2 and fleet.adapter_.channels_ == ["value"]


def test_the_notes_of_many_series_are_condensed():
    from aekit.data.series import NOTES_SHOWN, condensed

    train = machines(200, 0, count=8)
    row, machine = train.index % 200, train.index // 200
    det = SeriesAnomalyDetector(time_col="timestamp", id_col="machine", window=16, epochs=1)
    det.fit(train[~(row - 10 * machine).isin(range(100, 105))])  # a gap in every series, each at another time
    assert len(det.adapter_.notices_) == 8 and det.adapter_.notices_[0].startswith("series 'm0': 1 gap(s)")
    shown = condensed(det.adapter_.notices_)
    assert len(shown) == NOTES_SHOWN + 1 and shown[-1] == "... and 3 more notes like these"
    # series with the same note share one line
    same = det.fit(train[~row.isin(range(100, 105))]).adapter_.notices_
    assert condensed(same) == [f"series 'm0', 'm1', 'm2' and 5 more: {same[0].split(': ', 1)[1]}"]
    assert condensed(["series 'a': x", 'series "it\'s": x', "series 'b': y", "plain"]) == [
        'series \'a\', "it\'s": x', "series 'b': y", "plain"]


def test_cli_trains_on_a_table_of_series_and_scores_it(tmp_path, capsys):
    interleaved(machines(900, 0)).to_csv(tmp_path / "train.csv", index=False)
    test = interleaved(machines(500, 10, start="2024-02-01"))
    hit = (test.machine == "m2") & test.timestamp.between("2024-02-01 20:00", "2024-02-01 21:00")
    test["value"] += 2.0 * hit
    test["label"] = hit.astype(int)
    test.to_csv(tmp_path / "test.csv", index=False)
    m = str(tmp_path / "m")
    assert main(["anomaly", "train", str(tmp_path / "train.csv"), "--time-col", "timestamp", "--id-col", "machine",
                 "--window", "32", "--epochs", "10", "--out", m, "--quiet"]) == 0
    assert "trained on 2700 rows, 3 series (by 'machine')" in capsys.readouterr().out
    out = tmp_path / "s.csv"
    assert main(["anomaly", "score", str(tmp_path / "test.csv"), "--model", m, "--out", str(out), "--chunk-rows", "100",
                 "--label-col", "label", "--quiet"]) == 0
    assert "most flagged series (machine): 'm2' (" in capsys.readouterr().out
    scored = pd.read_csv(out)
    assert list(scored.columns) == ["machine", "timestamp", "score", "is_anomaly", "top_channels", "label"]
    assert (scored.machine == test.machine).all() and (scored.timestamp == test.timestamp).all()
    np.testing.assert_allclose(scored.score, load_detector(m).decision_function(test), rtol=1e-4)
    assert main(["anomaly", "eval", str(tmp_path / "test.csv"), "--model", m, "--label-col", "label",
                 "--report-dir", str(tmp_path / "rep"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    auc = float(next(line for line in printed.splitlines() if line.startswith("AUC-ROC")).split()[1])
    assert auc > 0.95 and (tmp_path / "rep" / "series.png").stat().st_size > 10_000
    assert "most flagged series (machine): 'm2' (" in printed
    summary = pd.read_csv(tmp_path / "rep" / "series_summary.csv")
    assert list(summary.columns) == ["machine", "rows", "flagged", "max_score", "first_flagged"]
    assert summary.machine.iloc[0] == "m2" and summary.rows.sum() == len(test)
    assert summary.first_flagged.iloc[0] <= "2024-02-01 20:00:00"
    assert (tmp_path / "rep" / "fleet.png").stat().st_size > 10_000
    events = pd.read_csv(tmp_path / "rep" / "events.csv")
    assert events.machine.iloc[0] == "m2" and events.start.iloc[0] <= "2024-02-01 20:00:00" <= events.end.iloc[0]
    assert f"  'm2' {events.start.iloc[0]} to {events.end.iloc[0]}" in printed
    # the counts of a scoring run, chunk by chunk, are the report's of the whole table
    from aekit.apps.anomaly.jobs import score_file

    streamed = score_file(tmp_path / "test.csv", m, tmp_path / "y.csv", chunksize=70, verbose=0).by_series
    pd.testing.assert_frame_equal(streamed.astype({"first_flagged": object}), summary.astype({"first_flagged": object}),
                                  check_dtype=False)
    assert main(["anomaly", "score", str(tmp_path / "test.csv"), "--model", m, "--out", str(tmp_path / "x.csv"),
                 "--id-col", "timestamp"]) == 2
    assert "trained with the series ID column 'machine'" in capsys.readouterr().err


def test_each_series_is_scaled_by_its_own_statistics_and_a_new_one_by_all(fleet, tmp_path):
    stats = fleet.adapter_.series_stats_
    assert sorted(stats) == ["m0", "m1", "m2"] and stats["m2"][0][0] == pytest.approx(6.0, abs=0.05)
    new = machines(300, 20, start="2024-02-01")
    moved = new.copy()
    moved.loc[moved.machine == "m2", "value"] -= 6.0  # m2 at m0's level: normal for m0, not for m2
    scores = fleet.decision_function(moved)
    assert (scores[600:] > fleet.threshold_).mean() > 0.9 and np.median(scores[600:]) > 3 * np.median(scores[:600])
    stranger = new[new.machine == "m0"].assign(machine="m9")
    fleet.adapter_.notices_ = []
    fleet.decision_function(stranger)
    assert fleet.adapter_.notices_ == ["series 'm9': not in training: scaled by the mean and spread of all the "
                                       "training series"]
    fleet.save(tmp_path / "m")
    again = load_detector(tmp_path / "m")
    assert again.adapter_.series_stats_ == stats
    np.testing.assert_allclose(again.decision_function(moved), scores, rtol=1e-5)
    shared = SeriesAnomalyDetector(time_col="timestamp", id_col="machine", series_scaling="shared", **FAST)
    assert shared.fit(interleaved(machines(900, 0))).adapter_.series_stats_ is None


def test_a_model_file_with_broken_series_statistics_is_refused(fleet, tmp_path):
    from aekit.errors import ModelFileError

    from .conftest import rewrite_config

    fleet.save(tmp_path / "m")
    rewrite_config(tmp_path / "m", lambda c: c["adapter"]["series_stats"]["m1"][1].__setitem__(0, -1.0))
    with pytest.raises(ModelFileError, match="series 'm1' needs a finite centre and a positive spread"):
        load_detector(tmp_path / "m")


def test_errors_past_the_first_chunk_name_the_files_data_row(tmp_path, capsys):
    frame = with_time(sine(300, 3))
    model = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=1).fit(frame).save(tmp_path / "m")
    frame.loc[149, "value"] = np.nan
    frame.loc[250, "timestamp"] = "not a time"
    for name, rows in (("value", frame), ("timestamp", frame.assign(value=frame.value.fillna(0.0)))):
        rows.to_csv(tmp_path / "bad.csv", index=False)
        assert main(["anomaly", "score", str(tmp_path / "bad.csv"), "--model", str(model), "--out",
                     str(tmp_path / "s.csv"), "--chunk-rows", "100"]) == 2
        line = capsys.readouterr().err
        assert f"column {name!r}" in line and f"data row {150 if name == 'value' else 251}" in line, line


def test_machines_that_start_at_other_times_stream_from_a_time_sorted_log(fleet, tmp_path):
    late = pd.concat([with_time(sine(400, 30 + k), start=f"2024-02-0{1 + k}").assign(machine=f"m{k}")
                      for k in range(3)], ignore_index=True)
    log = late.sort_values(["timestamp", "machine"], kind="stable").reset_index(drop=True)  # m0 alone at first
    log.to_csv(tmp_path / "log.csv", index=False)
    fleet.save(tmp_path / "m")
    assert main(["anomaly", "score", str(tmp_path / "log.csv"), "--model", str(tmp_path / "m"), "--out",
                 str(tmp_path / "s.csv"), "--chunk-rows", "50", "--quiet"]) == 0
    np.testing.assert_allclose(pd.read_csv(tmp_path / "s.csv").score, fleet.decision_function(log), rtol=1e-4)


def test_cli_trains_a_series_without_a_time_column(tmp_path, capsys):
    pd.DataFrame({"value": sine(400, 0), "site": "north"}).to_csv(tmp_path / "plain.csv", index=False)  # file order
    assert main(["anomaly", "train", str(tmp_path / "plain.csv"), "--window", "16", "--epochs", "2", "--out",
                 str(tmp_path / "m"), "--drop-cols", "site", "--quiet"]) == 0  # a TypeError before 0.9.4
    assert "trained on 400 rows, a series of 1 channel(s) (value)" in capsys.readouterr().out


def test_an_automatic_window_spans_two_cycles_of_the_series_own_period(tmp_path):
    from aekit.apps.anomaly.periods import FALLBACK_WINDOW, dominant_period, fleet_period
    from aekit.errors import ModelFileError

    from .conftest import rewrite_config

    det = SeriesAnomalyDetector(window="auto", epochs=2).fit(sine(1200, 0))
    assert det.window_ == 2 * PERIOD and det.stride_ == 2 * PERIOD // 8
    assert det.adapter_.notices_ == [f"window {2 * PERIOD} rows (2 cycles of {PERIOD} rows; --window N to choose)"]
    det.save(tmp_path / "m")
    x = sine(500, 1, start=1200)
    np.testing.assert_allclose(load_detector(tmp_path / "m").decision_function(x), det.decision_function(x), rtol=1e-6)
    noise = np.random.default_rng(0).standard_normal(1200)
    assert SeriesAnomalyDetector(window="auto", epochs=1).fit(noise).window_ == FALLBACK_WINDOW  # no cycle
    short = SeriesAnomalyDetector(window="auto", epochs=1).fit(sine(300, 0))
    assert short.window_ == 75 and short.adapter_.notices_[0].endswith(
        "2 cycles of 40 rows; at most a quarter of a 300-row training series; --window N to choose)")
    assert dominant_period(noise[:, None]) is None and dominant_period(sine(1200, 0)[:, None]) == PERIOD
    # several series share the median of their own periods where half of them have one
    assert fleet_period([sine(900, 0)[:, None], np.sin(np.arange(900) / 8)[:, None], noise[:900, None]]) in (
        45, 46, 47)
    assert fleet_period([sine(900, 0)[:, None], noise[:900, None], noise[300:, None]]) is None
    # a model of 0.9.4 (window a number, no fitted window saved) loads; a broken window is refused
    rewrite_config(tmp_path / "m", lambda c: (c["state"].pop("window"), c["params"].__setitem__("window", 80)))
    assert load_detector(tmp_path / "m").window_ == 80
    rewrite_config(tmp_path / "m", lambda c: c["state"].__setitem__("window", "long"))
    with pytest.raises(ModelFileError, match="the series window must be a number of rows"):
        load_detector(tmp_path / "m")


def test_missing_values_are_refused_or_filled_with_the_value_before_each_in_their_series(fleet, tmp_path, capsys):
    from aekit.errors import ModelFileError

    from .conftest import rewrite_config

    gappy = with_time(sine(600, 0))
    gappy.loc[[100, 101, 350], "value"] = np.nan
    with pytest.raises(DataError, match=r"column 'value' has 3 missing.*data row 101.*impute='ffill'"):
        SeriesAnomalyDetector(time_col="timestamp", **FAST).fit(gappy)
    det = SeriesAnomalyDetector(time_col="timestamp", impute="ffill", **FAST).fit(gappy)
    assert det.adapter_.notices_ == ["3 missing value(s) filled with the value before each (impute='ffill')"]
    filled = gappy.assign(value=gappy.value.ffill())
    np.testing.assert_allclose(det.decision_function(gappy), det.decision_function(filled), rtol=1e-6)
    # the same in chunks of any size; a first value missing takes the training mean
    new = with_time(sine(300, 1, start=600), start="2024-01-03 02:00")
    new.loc[[0, 150, 151], "value"] = np.nan
    whole = det.decision_function(new)
    expected = new.assign(value=new.value.fillna({0: det.adapter_.center_[0]}).ffill())
    np.testing.assert_allclose(whole, det.decision_function(expected), rtol=1e-6)
    stream = det.stream(per_channel=False)
    parts = [stream.feed(new.iloc[a:a + 150])[0] for a in (0, 150)] + [stream.finish()[0]]  # 150 | 151 cut
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-5)
    det.save(tmp_path / "m")
    np.testing.assert_allclose(load_detector(tmp_path / "m").decision_function(new), whole, rtol=1e-6)
    rewrite_config(tmp_path / "m", lambda c: c["adapter"].__setitem__("impute", "mean"))
    with pytest.raises(ModelFileError, match="the series' impute must be one of"):
        load_detector(tmp_path / "m")
    # in a table of several series, a missing value takes its own series' value before it
    table = interleaved(machines(400, 0))  # m0, m1, m2 at 0, 3 and 6
    det = SeriesAnomalyDetector(time_col="timestamp", id_col="machine", impute="ffill", **FAST).fit(table)
    holed = table.copy()
    m2 = holed.index[holed.machine == "m2"]
    holed.loc[m2[200], "value"] = np.nan  # right after a row of m1
    np.testing.assert_allclose(det.decision_function(holed),
                               det.decision_function(holed.assign(value=holed.groupby("machine").value.ffill())),
                               rtol=1e-5)
    assert det.adapter_.notices_[-1] == "series 'm2': 1 missing value(s) filled with the value before each " \
                                        "(impute='ffill')"
    stream = det.stream(per_channel=False)
    parts = [stream.feed(holed.iloc[a:a + 37])[0] for a in range(0, len(holed), 37)] + [stream.finish()[0]]
    np.testing.assert_allclose(np.concatenate(parts), det.decision_function(holed), rtol=1e-4)
    # the command line: ffill is for series, median for tables
    gappy.to_csv(tmp_path / "gappy.csv", index=False)
    args = ["anomaly", "train", str(tmp_path / "gappy.csv"), "--out", str(tmp_path / "g"), "--epochs", "2", "--quiet"]
    assert main([*args, "--time-col", "timestamp", "--impute", "median"]) == 2
    assert "--impute median is for tables; a time series takes --impute ffill" in capsys.readouterr().err
    assert main([*args, "--impute", "ffill", "--drop-cols", "timestamp"]) == 2
    assert "--impute ffill is for a time series" in capsys.readouterr().err
    assert main([*args, "--time-col", "timestamp", "--impute", "ffill", "--window", "32"]) == 0
    assert "note: 3 missing value(s) filled with the value before each (impute='ffill')" in capsys.readouterr().out


def test_a_table_of_series_scores_on_dask_as_it_does_here(fleet, tmp_path, capsys):
    from aekit.apps.anomaly.batch import model_files, score_dask, score_series_partition, spark_series_scorer
    from aekit.apps.anomaly.jobs import score_file

    table = interleaved(machines(300, 20, start="2024-02-01"))
    table.loc[table.index[-5:], "value"] += 3.0
    table.to_csv(tmp_path / "fleet.csv", index=False)
    fleet.save(tmp_path / "m")
    summary = score_dask(str(tmp_path / "fleet.csv"), tmp_path / "m", tmp_path / "dask.parquet", workers=1)
    here = score_file(tmp_path / "fleet.csv", tmp_path / "m", tmp_path / "here.csv", verbose=0)
    there, local = pd.read_parquet(tmp_path / "dask.parquet"), pd.read_csv(tmp_path / "here.csv")
    assert (summary.rows, summary.flagged) == (here.rows, here.flagged) == (len(local), int(local.is_anomaly.sum()))
    assert all(rows.timestamp.is_monotonic_increasing for _, rows in there.groupby("machine"))  # series by series
    joined = there.merge(local, on=["machine", "timestamp"], suffixes=("", "_here"))
    assert len(joined) == len(table)
    np.testing.assert_allclose(joined.score, joined.score_here, rtol=1e-4)
    assert (joined.top_channels == joined.top_channels_here).all()
    # Spark's groupBy(ID).applyInPandas hands the function one whole series at a time
    scorer = spark_series_scorer(tmp_path / "m")
    by_spark = pd.concat([scorer(rows.drop(columns="machine").assign(machine=key).iloc[::-1])  # any row order
                          for key, rows in table.groupby("machine")], ignore_index=True)
    joined = by_spark.merge(local, on=["machine", "timestamp"], suffixes=("", "_here"))
    assert len(joined) == len(table) and (joined.is_anomaly == joined.is_anomaly_here).all()
    np.testing.assert_allclose(joined.score, joined.score_here, rtol=1e-4)
    # a partition of many series in any row order: sorted and scored whole, series by series
    shuffled = table.sample(frac=1, random_state=0)
    mixed = score_series_partition(shuffled, model_files(tmp_path / "m", series=True), None, 3)
    assert list(pd.unique(mixed.machine)) == list(pd.unique(shuffled.machine))
    assert all(rows.timestamp.is_monotonic_increasing for _, rows in mixed.groupby("machine"))
    joined = mixed.merge(local, on=["machine", "timestamp"], suffixes=("", "_here"))
    np.testing.assert_allclose(joined.score, joined.score_here, rtol=1e-4)
    # a model of one series cannot be cut by series; Spark's row batches are not series
    SeriesAnomalyDetector(**FAST).fit(sine(400, 0)).save(tmp_path / "one")
    with pytest.raises(DataError, match="a time-series model of one series or without a time column"):
        model_files(tmp_path / "one", series=True)
    with pytest.raises(DataError, match="distributed scoring takes tables"):
        model_files(tmp_path / "m")


def _run_onnx(path, **inputs):
    import onnxruntime

    return onnxruntime.InferenceSession(str(path)).run(None, inputs)


def test_onnx_scores_each_series_of_a_fleet_as_aekit_does(fleet, tmp_path):
    import json

    from aekit.apps.anomaly.export import export_onnx, onnx_metadata

    fleet.save(tmp_path / "m")
    meta = export_onnx(tmp_path / "m", tmp_path / "fleet.onnx")
    assert onnx_metadata(tmp_path / "fleet.onnx") == meta and json.loads(meta["series_ids"]) == ["m0", "m1", "m2"]
    assert json.loads(meta["columns"]) == ["value"] and meta["window"] == str(WINDOW)
    new = interleaved(machines(300, 7))
    new.loc[new.index[400:430], "value"] += 3  # a level shift in every machine's rows ~133-143
    new = pd.concat([new, new[new.machine == "m1"].assign(machine="unseen")], ignore_index=True)
    expected = fleet.decision_function(new)
    for position, key in [(0, "m0"), (1, "m1"), (2, "m2"), (-1, "unseen")]:
        rows = (new.machine == key).to_numpy()
        score, flagged = _run_onnx(tmp_path / "fleet.onnx", x=new.loc[rows, ["value"]].to_numpy("float32"),
                                   series=np.array([position]))
        np.testing.assert_allclose(score, expected[rows], rtol=1e-4)
        np.testing.assert_array_equal(flagged, score > fleet.threshold_)
    x = new.loc[new.machine == "m0", ["value"]].to_numpy("float32").copy()
    short, _ = _run_onnx(tmp_path / "fleet.onnx", x=x[:WINDOW - 1], series=np.array([0]))
    x[5] = np.nan
    holed, _ = _run_onnx(tmp_path / "fleet.onnx", x=x, series=np.array([0]))
    assert np.isnan(short).all() and len(short) == WINDOW - 1 and np.isnan(holed).all()


def test_onnx_scores_a_long_series_in_pieces_as_a_whole(fitted, tmp_path):
    from aekit.apps.anomaly.export import export_onnx

    fitted.save(tmp_path / "m")
    meta = export_onnx(tmp_path / "m", tmp_path / "one.onnx")
    import onnxruntime

    inputs = [i.name for i in onnxruntime.InferenceSession(str(tmp_path / "one.onnx")).get_inputs()]
    assert inputs == ["x"] and meta["series_ids"] == "[]"
    x = sine(1500, 3)
    _spike(x)
    whole = fitted.decision_function(x)
    window, stride = int(meta["window"]), int(meta["stride"])
    margin = -(-(window - 1) // stride) * stride
    pieces = []
    for a in range(0, len(x), 10 * stride):  # pieces of 10 strides, with their margins
        b = min(a + 10 * stride, len(x))
        start, stop = max(0, a - margin), min(len(x), b + window)
        score, _ = _run_onnx(tmp_path / "one.onnx", x=x[start:stop, None].astype("float32"))
        pieces.append(score[a - start:b - start])
    np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=1e-4)


def test_times_held_as_python_numbers_are_seconds_and_an_empty_id_is_refused(fleet):
    frame = with_time(sine(400, 0))
    as_objects = frame.assign(timestamp=pd.Series(np.arange(400) * 300, dtype=object))  # a frame built from JSON
    det = SeriesAnomalyDetector(time_col="timestamp", window=16, epochs=1, verbose=0).fit(as_objects)
    assert det.series_adapter_.interval_ == 300 and not det.series_adapter_.notices_
    rows = interleaved(machines(40, 1))
    rows.loc[5, "machine"] = ""
    with pytest.raises(DataError, match="column 'machine' has an empty series ID at data row 6"):
        fleet.decision_function(rows)


def test_requests_scored_together_equal_each_scored_alone_with_their_own_notes(fleet, fitted):
    first = interleaved(machines(60, 2))
    short = pd.DataFrame({"machine": "new", "timestamp": ["2024-01-01 00:00:00"], "value": [0.5]})
    second = pd.concat([interleaved(machines(45, 3, count=2)), short], ignore_index=True)
    bad = first.iloc[::-1]
    together = fleet.score_requests([first, bad, second])  # float32 sums of other batches: equal to 1e-4
    assert isinstance(together[1], DataError) and "times go back" in str(together[1])
    for table, (scores, parts, notes) in zip([first, second], [together[0], together[2]]):
        alone = fleet.score_with_notes(table)
        np.testing.assert_allclose(scores, alone[0], rtol=1e-4)
        np.testing.assert_allclose(parts, alone[1], rtol=1e-4, atol=1e-9)
        assert notes == alone[2]
    assert together[0][2] == [] and any("series 'new'" in n for n in together[2][2])
    one = sine(100, 4)
    lone = fitted.score_requests([one, one[:10], one[:50]])
    assert "too few for one window" in str(lone[1])
    np.testing.assert_allclose(lone[0][0], fitted.decision_function(one), rtol=1e-4)
    np.testing.assert_allclose(lone[2][0], fitted.decision_function(one[:50]), rtol=1e-4)
