"""The numpy scorer of table models (what ``aekit anomaly score`` runs without torch) gives
the torch path's scores and explanations, and hands every other model to the torch path."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from aekit import AnomalyDetector, VAEAnomalyDetector
from aekit.apps.anomaly import base, light
from aekit.apps.anomaly.jobs import score_file
from aekit.apps.anomaly.light import LightTableDetector, score_table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5)), columns=list("abcde"))
    frame["kind"] = rng.choice(["x", "y", "z"], 300)
    return frame


@pytest.mark.parametrize("params", [
    dict(),
    dict(n_estimators=2, activation="tanh", batch_norm=True, feature_weighting="relative", log_columns=["a"]),
    dict(local_weight=0, latent_weight=0, dropout=0.1, feature_weighting="global"),
])
def test_numpy_scores_and_explanations_equal_the_torch_paths(table, tmp_path, params):
    det = AnomalyDetector(epochs=3, **params).fit(table.iloc[:200])
    det.save(tmp_path / "m")
    fast = LightTableDetector.load(tmp_path / "m")
    assert fast is not None
    assert [m.mixture is not None for m in fast.members] == [m is not None for m in det.latent_mixtures_]
    if params.get("latent_weight", 1):  # the code term reads a mixture, which the twin must score too
        assert all(m.mixture is not None for m in fast.members)
    test = table.iloc[200:].assign(kind=["w"] + table.kind.iloc[201:].tolist())  # an unseen category too
    scores, parts = det.score_explain(test)
    fast_scores, fast_parts = fast.score_explain(test)
    np.testing.assert_allclose(fast_scores, scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast_parts.to_numpy(), parts.to_numpy(), rtol=1e-4, atol=1e-5)
    assert list(fast_parts.columns) == list(parts.columns) and fast.threshold_ == det.threshold_


def test_numeric_tables_over_several_blocks_equal_the_torch_path(tmp_path, monkeypatch):
    """No one-hot columns to fold back, the local term's search over many blocks and many
    products (small limits), and the rows split among threads or not: three threads give
    one thread's numbers bit for bit (their parts keep each row's place in BLAS's tiles)."""
    monkeypatch.setattr(light, "SEARCH_VALUES", 1 << 12)
    monkeypatch.setattr(light, "PRODUCT_VALUES", 1 << 10)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(3 * light.THREAD_ROWS + 300, 6)), columns=list("uvwxyz"))
    det = AnomalyDetector(epochs=2).fit(frame.iloc[:1500])
    det.save(tmp_path / "m")
    scores, parts = det.score_explain(frame)
    found = []
    for threads in (1, 3):
        monkeypatch.setattr(light, "usable_cores", lambda threads=threads: threads)
        fast = LightTableDetector.load(tmp_path / "m")
        assert fast is not None and fast.fold is None
        assert fast.search.cells > fast.search.probes and fast.search.block < len(frame) // threads
        fast_scores, fast_parts = fast.score_explain(frame)
        np.testing.assert_allclose(fast_scores, scores, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(fast_parts.to_numpy(), parts.to_numpy(), rtol=1e-4, atol=1e-5)
        found.append((fast_scores, fast_parts.to_numpy()))
    assert all(np.array_equal(a, b) for a, b in zip(*found, strict=True))
    # a last block of under a quarter of a block joins the one before; one of a half does not
    block, sizes = fast.search.block, []
    whole = fast._block_scores
    monkeypatch.setattr(fast, "_block_scores", lambda rows: sizes.append(len(rows)) or whole(rows))
    z = fast.preprocessor_.transform(frame)
    for tail, expected in ((block // 8, [block, block + block // 8]), (block // 2, [block, block, block // 2])):
        sizes.clear()
        part_scores, _ = fast._part_scores(z[:2 * block + tail])
        assert sizes == expected
        np.testing.assert_allclose(part_scores, scores[:2 * block + tail], rtol=1e-4, atol=1e-5)


def test_top_features_rank_ties_by_column_order_whatever_k():
    from aekit.apps.anomaly.report import ARGMAX_PASSES, top_feature_records

    values = np.array([[1.0, 3.0, 3.0, 0.0, 2.0] * 4])
    for k in (3, ARGMAX_PASSES + 2):
        records = top_feature_records(values, [f"c{j}" for j in range(20)], k)[0]
        expected = sorted(range(20), key=lambda j: (-values[0, j], j))[:k]
        assert [r["column"] for r in records] == [f"c{j}" for j in expected]
        assert records[0]["share"] == pytest.approx(3 / 36)


def test_top_features_by_packed_maxima_equal_a_sort():
    from aekit.apps.anomaly.report import _top

    values = np.random.default_rng(2).gamma(0.5, size=(500, 37))
    values[:, 5] = values[:, 9]  # exact ties: the first column first
    order, top, share = _top(values, 4)
    expected = np.argsort(-values, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_allclose(share.sum(1), np.sort(values, 1)[:, -4:].sum(1) / values.sum(1))
    signed = values - 0.5  # negative values take the argmax passes, with the same order
    np.testing.assert_array_equal(_top(signed, 4)[0], expected)


def test_score_table_writes_what_score_file_writes(table, tmp_path):
    AnomalyDetector(epochs=3).fit(table.iloc[:200]).save(tmp_path / "m")
    table.iloc[200:].assign(id=range(100)).to_csv(tmp_path / "t.csv", index=False)
    summary = score_table(tmp_path / "t.csv", tmp_path / "m", tmp_path / "fast.csv", id_col="id", chunksize=30)
    score_file(tmp_path / "t.csv", tmp_path / "m", tmp_path / "torch.csv", id_col="id", chunksize=30, verbose=0)
    fast, slow = pd.read_csv(tmp_path / "fast.csv"), pd.read_csv(tmp_path / "torch.csv")
    assert list(fast.columns) == list(slow.columns) == ["id", "score", "is_anomaly", "top_features"]
    np.testing.assert_allclose(fast.score, slow.score, rtol=1e-4)
    assert (fast.top_features == slow.top_features).mean() > 0.95 and summary.rows == 100


@pytest.mark.parametrize("scorer", ["numpy", "torch", "torch VAE"])
def test_chunks_scored_on_several_threads_write_what_one_thread_writes(table, tmp_path, monkeypatch, scorer):
    """Whole chunks on several threads (map_ahead), each with its own copy of the scorer
    (``copy_for_a_thread``; a fitted torch detector's through ``jobs.score_file``, each on
    one torch thread): the same file, in order, every chunk's unseen categories counted,
    and torch's thread count back after."""
    import torch

    det = (VAEAnomalyDetector if scorer == "torch VAE" else AnomalyDetector)(epochs=3).fit(table.iloc[:200])
    test = table.iloc[200:].assign(id=range(100))
    test.loc[test.index[::7], "kind"] = "new"  # an unseen category in most chunks
    test.to_csv(tmp_path / "t.csv", index=False)
    if scorer == "numpy":
        det.save(tmp_path / "m")
    threads_before = torch.get_num_threads()
    written, summaries = [], []
    for threads in (1, 3):
        monkeypatch.setattr(light, "usable_cores", lambda threads=threads: threads)
        out = tmp_path / f"scores{threads}.csv"
        options = dict(id_col="id", chunksize=9, verbose=0)
        summaries.append(score_table(tmp_path / "t.csv", tmp_path / "m", out, **options) if scorer == "numpy"
                         else score_file(tmp_path / "t.csv", det, out, **options))
        written.append(out.read_bytes())
    assert written[0] == written[1] and torch.get_num_threads() == threads_before
    assert summaries[0] == summaries[1] and summaries[1].unseen_categories == {"kind": 15}
    scored = pd.read_csv(tmp_path / "scores3.csv")
    assert scored.id.tolist() == list(range(100))
    if scorer != "numpy":
        np.testing.assert_allclose(scored.score, det.decision_function(test.drop(columns="id")), rtol=1e-5)


def test_other_models_go_to_the_torch_path(table, tmp_path):
    VAEAnomalyDetector(epochs=2).fit(table.iloc[:200]).save(tmp_path / "vae")
    assert LightTableDetector.load(tmp_path / "vae") is None
    assert light.VARIANCE_FLOOR == base.VARIANCE_FLOOR
    assert light.WEIGHTINGS == base.FEATURE_WEIGHTINGS[1:]


@pytest.mark.parametrize("change, named", [
    (lambda c: c["params"].update(latent_weight=-5.0), "latent_weight"),
    (lambda c: c["state"]["local"].update(groups=0), "groups"),  # was a ZeroDivisionError traceback
    (lambda c: c["state"]["local"].update(probes=2), "probes"),
    (lambda c: c["state"]["local"].update(cells=1.5), "cells"),
])
def test_a_re_signed_bad_setting_is_refused_as_the_torch_path_refuses_it(table, tmp_path, capsys, change, named):
    from aekit.cli import main

    from .conftest import rewrite_config

    AnomalyDetector(epochs=2).fit(table.iloc[:200]).save(tmp_path / "m")
    rewrite_config(tmp_path / "m", change)
    assert LightTableDetector.load(tmp_path / "m") is None
    table.iloc[200:].to_csv(tmp_path / "t.csv", index=False)
    assert main(["anomaly", "score", str(tmp_path / "t.csv"), "--model", str(tmp_path / "m"), "--out",
                 str(tmp_path / "s.csv"), "--quiet"]) == 2
    assert named in capsys.readouterr().err and not (tmp_path / "s.csv").exists()


def test_packed_search_finds_each_groups_nearest_reference_and_breaks_ties_by_position():
    """The numpy search packs positions into distances' low bits: it must find what an
    exhaustive search finds, on rows equal to a reference (distance 0, which rounding can
    make slightly negative) and on duplicated references (a tie within a cell goes to the
    first, as argmin's does; across cells either is as near)."""
    rng = np.random.default_rng(3)
    cells, groups, size, width = 4, 3, 20, 5
    refs = rng.normal(size=(cells * groups * size, width)).astype(np.float32)
    refs[7] = refs[3]  # a tie within cell 0's group 0
    refs[groups * size + 3] = refs[3]  # and one in cell 1's group 0
    centres = refs.reshape(cells, -1, width).mean(1)
    search = light._CellSearch(refs, centres, groups, probes=cells)
    rows = np.vstack([rng.normal(size=(300, width)), refs[[3, 11, 100]]]).astype(np.float32)
    found = search.nearest(rows)
    nearest_of_all, nearest, mean = search.nearest_and_mean(rows)
    layout = refs.reshape(cells, groups, size, width).transpose(1, 0, 2, 3).reshape(groups, cells * size, width)
    for g in range(groups):
        exact = ((rows[:, None] - layout[g][None]) ** 2).sum(2)
        np.testing.assert_allclose(((rows - refs[found[:, g]]) ** 2).sum(1), exact.min(1), atol=1e-5)
        brute = exact.argmin(1)
        assert (found[:, g] == search.offsets[brute // size, g] + brute % size).mean() > 0.99
    assert 7 not in found[:, 0] and found[-3, 0] in (3, groups * size + 3)
    exact = ((rows[:, None] - refs[None]) ** 2).sum(2)
    group_nearest = np.stack([((rows[:, None] - layout[g][None]) ** 2).sum(2).min(1) for g in range(groups)], 1)
    np.testing.assert_allclose(mean, group_nearest.mean(1), rtol=1e-4, atol=1e-4)  # unpacked: 2^-16 relative
    np.testing.assert_allclose(nearest, exact.min(1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(exact[np.arange(len(rows)), nearest_of_all], exact.min(1), atol=1e-5)
    assert found[-2, 0] == 11 and found[-1, 2] == 100  # refs[100]: cell 1, group 2, slot 0


def test_subnormal_weights_of_an_older_model_are_zero_when_loaded(table, tmp_path):
    """A model saved with subnormal weights (trained before 0.9.1) loads without them, in
    torch and in numpy, and scores as it did."""
    det = AnomalyDetector(epochs=2, random_state=0).fit(table)
    tiny = np.finfo(np.float32).tiny
    with torch.no_grad():
        det.models_[0].decoder.net[0].weight[:2, 0] = torch.tensor([tiny / 2, -tiny / 16])
    scores = det.decision_function(table)
    det.save(tmp_path / "m")
    loaded = AnomalyDetector.load(tmp_path / "m")
    assert (loaded.models_[0].decoder.net[0].weight[:2, 0] == 0).all()
    np.testing.assert_array_equal(loaded.decision_function(table), scores)
    fast = LightTableDetector.load(tmp_path / "m")
    matrices = [m for member in fast.members for net in (member.encoder, member.decoder) for m, _, _ in net.layers]
    assert not any(((np.abs(m) < tiny) & (m != 0)).any() for m in matrices)
    np.testing.assert_allclose(fast.score_explain(table)[0], scores, rtol=1e-4, atol=1e-5)
