"""The anomaly-detection API: quality on real data, thresholds, explanations, sklearn surface."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from aekit import AnomalyDetector, DataError, ModelFileError, NotFittedError, ParameterError, VAEAnomalyDetector
from aekit.errors import DataNotice
from aekit.apps.anomaly.thresholds import false_alarm_quantile

from .conftest import FAST, make_kdd_rows, rewrite_config, rewrite_tensors


@pytest.fixture(scope="module")
def fitted(cancer_split):
    Xtr, _, _ = cancer_split
    return AnomalyDetector(**FAST).fit(Xtr)


def test_detects_malignant_tumours_far_better_than_chance(fitted, cancer_split):
    _, Xte, yte = cancer_split
    scores = fitted.decision_function(Xte)
    assert roc_auc_score(yte, scores) > 0.9
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores))
    assert scores[yte == 1].mean() > 2 * scores[yte == 0].mean()  # higher = more anomalous


def test_pyod_surface(fitted, cancer_split):
    Xtr, Xte, _ = cancer_split
    assert fitted.decision_scores_.shape == (len(Xtr),)
    np.testing.assert_array_equal(fitted.labels_, (fitted.decision_scores_ > fitted.threshold_).astype(int))
    assert fitted.labels_.mean() == pytest.approx(0.1, abs=0.02)  # contamination 0.1 by default
    assert not fitted.threshold_rule_.held_out  # tables read their (leave-one-out) training scores
    pred = fitted.predict(Xte)
    assert set(np.unique(pred)) <= {0, 1}
    proba = fitted.predict_proba(Xte)
    assert proba.shape == (len(Xte), 2) and np.allclose(proba.sum(1), 1) and proba.min() >= 0
    unify = fitted.predict_proba(Xte, method="unify")
    assert (np.argmax(unify, 1) <= 1).all()
    assert fitted.score_samples(Xte[:3]).shape == (3,)


def test_predict_confidence_is_pyods_exceed(fitted, cancer_split):
    """``predict_confidence`` is PyOD's (ExCeeD), written out here as PyOD writes it, with
    the flagged training rows counted; sure far from the threshold, unsure at it."""
    from scipy.stats import binom

    _, Xte, yte = cancer_split
    scores = fitted.decision_function(Xte)
    train, n = fitted.decision_scores_, len(fitted.decision_scores_)
    flagged = int(fitted.labels_.sum())
    below = np.array([np.count_nonzero(train <= x) for x in scores])
    expected = np.array([1 - binom.cdf(n - flagged, n, (1 + b) / (2 + n)) for b in below])
    expected[scores <= fitted.threshold_] = 1 - expected[scores <= fitted.threshold_]
    confidence = fitted.predict_confidence(Xte)
    np.testing.assert_allclose(confidence, expected, rtol=1e-12)
    assert ((confidence >= 0) & (confidence <= 1)).all()
    assert confidence[scores > 2 * train.max()].min() > 0.99  # far above every training row: surely an anomaly
    assert confidence[scores < np.quantile(train, 0.5)].min() > 0.99  # typical normal rows: surely normal
    near = np.abs(scores / fitted.threshold_ - 1) < 0.05
    assert near.any() and confidence[near].mean() < 0.9  # at the threshold, unsure
    labels, same = fitted.predict(Xte, return_confidence=True)
    np.testing.assert_array_equal(labels, fitted.predict(Xte))
    np.testing.assert_array_equal(same, confidence)
    proba, same = fitted.predict_proba(Xte, return_confidence=True)
    np.testing.assert_array_equal(proba, fitted.predict_proba(Xte))
    np.testing.assert_array_equal(same, confidence)


def test_vae_detector_works_and_elbo_adds_kl(cancer_split):
    Xtr, Xte, yte = cancer_split
    vae = VAEAnomalyDetector(**FAST).fit(Xtr)
    assert roc_auc_score(yte, vae.decision_function(Xte)) > 0.85
    # the same rows scored alone or in a batch get the same score (shared noise draws)
    np.testing.assert_allclose(vae.decision_function(Xte[:5]), vae.decision_function(Xte)[:5], rtol=1e-5)
    elbo = VAEAnomalyDetector(**FAST, score="elbo").fit(Xtr)
    s, contrib = elbo.score_explain(Xte)
    assert np.all(s > contrib.sum(axis=1).to_numpy())  # the KL part is not attributed to features
    assert roc_auc_score(yte, s) > 0.85


def test_vae_has_no_nan_on_hard_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    X[:, 0] = 7.0  # constant column
    X[:, 1] *= 1e6  # enormous scale
    X[::7, 2] = rng.standard_cauchy(len(X[::7, 2])) * 1e4  # heavy tails
    vae = VAEAnomalyDetector(n_estimators=1, epochs=30, verbose=0).fit(X)
    assert np.all(np.isfinite(vae.decision_function(X)))


def test_thresholds_three_ways(cancer_split, tmp_path):
    Xtr, Xte, _ = cancer_split
    fpr = AnomalyDetector(**FAST, threshold="fpr:0.05").fit(Xtr)
    assert fpr.threshold_rule_.method == "fpr"
    # a table's fpr threshold reads every training row's (leave-one-out) score, at the
    # position a new row like them exceeds 5% of the time; saved and loaded with what it read
    assert fpr.threshold_ == pytest.approx(np.quantile(fpr.decision_scores_, 0.95, method="weibull"), rel=2e-5)
    assert fpr.threshold_rule_.describe() == "false-alarm rate 0.05 on held-out and leave-one-out training data"
    fpr.save(tmp_path / "fpr")
    assert AnomalyDetector.load(tmp_path / "fpr").threshold_rule_ == fpr.threshold_rule_
    rewrite_config(tmp_path / "fpr", lambda c: c["state"]["threshold"].__setitem__("reads", "everything"))
    with pytest.raises(ModelFileError, match="the threshold's reads must be one of .* of an fpr rule, got 'everything'"):
        AnomalyDetector.load(tmp_path / "fpr")
    explicit = AnomalyDetector(**FAST, threshold=3.5).fit(Xtr)
    assert explicit.threshold_ == 3.5
    assert ((explicit.decision_function(Xte) > 3.5).astype(int) == explicit.predict(Xte)).all()
    cont = AnomalyDetector(**FAST, contamination=0.2).fit(Xtr)
    assert cont.labels_.mean() == pytest.approx(0.2, abs=0.02)
    # re-threshold on known-clean rows without retraining
    cont.set_threshold("fpr:0.1", X_clean=Xtr)
    assert cont.predict(Xtr).mean() == pytest.approx(0.1, abs=0.02)
    assert cont.threshold_rule_.describe() == "false-alarm rate 0.1 on the clean data given"
    for bad in ("fpr:2", "fpr:x", "tpr:0.1", [1]):
        with pytest.raises(ValueError):
            AnomalyDetector(threshold=bad).fit(Xtr)


def test_false_alarm_quantile_is_exceeded_at_its_rate():
    """The k-th smallest of n scores is exceeded by a new one (n + 1 - k) / (n + 1) of the
    time: of 19 scores, fpr:0.05 is their maximum (exceeded 1/20 of the time), not a point
    below it; with fewer than 19 a note says the promise cannot be kept."""
    scores = np.arange(1.0, 20.0)
    assert 19.0 < false_alarm_quantile(scores, 0.05) < 19.001  # lifted by the scorers' rounding: 19 is normal
    assert np.quantile(scores, 0.95) < 19.0  # numpy's default: exceeded more often than promised
    assert false_alarm_quantile(np.arange(1.0, 40.0), 0.05) == pytest.approx(38.0, rel=2e-5)  # position 40 * 0.95
    with pytest.warns(DataNotice, match=r"fpr:0.05 reads 9 clean scores, fewer than the 19 it needs: it is their "
                                        r"maximum, which new normal samples exceed about 10.0% of the time"):
        assert false_alarm_quantile(np.r_[scores[:9], np.nan], 0.05) == pytest.approx(9.0, rel=2e-5)
    # simulated, 32 clean scores: new samples like them exceed it about 5% of the time on average
    # (a little less between two order statistics), and numpy's default quantile 7%
    rng = np.random.default_rng(0)
    draws = [(rng.normal(size=32), rng.normal(size=1000)) for _ in range(2000)]
    assert 0.045 < np.mean([(new > false_alarm_quantile(clean, 0.05)).mean() for clean, new in draws]) <= 0.05
    assert np.mean([(new > np.quantile(clean, 0.95)).mean() for clean, new in draws]) > 0.065


def test_explain_sums_to_score_and_folds_one_hot_columns():
    df = make_kdd_rows(300, 0).drop(columns="label")
    det = AnomalyDetector(**FAST, latent_weight=0).fit(df)
    attacks = make_kdd_rows(0, 20, seed=1).drop(columns="label")
    contrib = det.explain(attacks)
    assert list(contrib.columns) == list(df.columns)  # original names, service not service=http
    np.testing.assert_allclose(contrib.sum(axis=1), det.decision_function(attacks), rtol=1e-4)
    assert det.preprocessor_.unseen_counts_ == {"protocol_type": 10, "service": 20, "flag": 10}
    normal_scores = det.decision_function(make_kdd_rows(50, 0, seed=2).drop(columns="label"))
    assert det.decision_function(attacks).min() > np.median(normal_scores)


def test_latent_density_term_adds_to_the_feature_contributions(fitted, cancer_split):
    _, Xte, yte = cancer_split
    scores, contrib = fitted.score_explain(Xte)
    latent = scores - contrib.sum(axis=1).to_numpy()
    assert np.all(latent > 0)  # a squared Mahalanobis distance
    assert latent[yte == 1].mean() > latent[yte == 0].mean()  # malignant codes lie off the normal ones
    no_latent = AnomalyDetector(**FAST, latent_weight=0).fit(cancer_split[0])
    np.testing.assert_allclose(no_latent.decision_function(Xte), no_latent.explain(Xte).sum(axis=1), rtol=1e-5)


def between_clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal rows in 6 separated clusters (8-D); anomalies midway between two of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(6, 8))
    normal = centres[rng.integers(6, size=700)] + rng.normal(size=(700, 8))
    a = rng.integers(6, size=60)
    b = (a + rng.integers(1, 6, size=60)) % 6
    between = 0.5 * (centres[a] + centres[b]) + rng.normal(size=(60, 8))
    test = np.vstack([normal[500:], between])
    return normal[:500], test, np.r_[np.zeros(200, int), np.ones(60, int)]


def test_local_term_finds_rows_between_clusters_of_normal_data():
    train, test, y = between_clusters()
    auc = {w: roc_auc_score(y, AnomalyDetector(**FAST, local_weight=w, latent_weight=0).fit(train).decision_function(test))
           for w in ("auto", 0)}
    assert auc["auto"] > 0.97  # no normal row is near the midpoints
    assert auc["auto"] > auc[0] + 0.1  # the reconstruction term alone sees fewer of them (0.84 here)


def test_code_mixture_finds_rows_between_clusters_of_codes():
    train, test, y = between_clusters()
    det = AnomalyDetector(**FAST, local_weight=0).fit(train)
    assert all(m is not None and len(m.offsets) > 1 for m in det.latent_mixtures_)  # BIC sees the clusters
    with_mixture = roc_auc_score(y, det.decision_function(test))
    det.latent_mixtures_ = [None] * len(det.models_)  # one Gaussian: the midpoints sit near its mean
    assert with_mixture > roc_auc_score(y, det.decision_function(test)) + 0.2  # 0.96 against 0.59 here


def test_code_mixture_term_is_the_mixtures_negative_log_density():
    from sklearn.mixture import GaussianMixture

    from aekit.apps.anomaly import code_mixture

    rng = np.random.default_rng(0)
    codes = np.vstack([rng.normal(loc=4 * c, size=(300, 3)) @ rng.normal(size=(3, 3)) for c in range(3)])
    mixture = code_mixture.fit_code_mixture(torch.from_numpy(codes).float(), seed=0)
    k = len(mixture.offsets)
    assert 3 <= k <= code_mixture.MAX_COMPONENTS
    reg = code_mixture.REGULARISATION * codes.var(0).mean()
    gmm = GaussianMixture(k, covariance_type="full", reg_covar=reg, random_state=0).fit(codes)
    difference = mixture.term(torch.from_numpy(codes).float()).double().numpy() + gmm.score_samples(codes)
    assert difference.std() < 1e-3 * codes.shape[1]  # the same density, up to the constant locate() sets


def test_code_mixture_is_saved_checked_and_optional(fitted, cancer_split, tmp_path):
    import copy

    _, Xte, _ = cancer_split
    path = fitted.save(tmp_path / "m")
    loaded = AnomalyDetector.load(path)
    np.testing.assert_array_equal(loaded.latent_mixtures_[0].factors.numpy(), fitted.latent_mixtures_[0].factors.numpy())
    np.testing.assert_allclose(loaded.decision_function(Xte), fitted.decision_function(Xte), rtol=1e-6)

    def negative_scale(tensors):
        tensors["calibration0/mixture_scale"] = -tensors["calibration0/mixture_scale"]

    rewrite_tensors(path, negative_scale)
    with pytest.raises(ModelFileError, match="member 0: the code mixture holds NaN, inf or a scale <= 0"):
        AnomalyDetector.load(path)

    def without_mixture(tensors):  # as a model saved before the mixture (0.6.0)
        for key in [k for k in tensors if "/mixture_" in k]:
            del tensors[key]

    rewrite_tensors(path, without_mixture)
    old = AnomalyDetector.load(path)
    assert old.latent_mixtures_ == [None] * len(old.models_)
    fitted_without = copy.deepcopy(fitted)
    fitted_without.latent_mixtures_ = [None] * len(fitted.models_)
    np.testing.assert_allclose(old.decision_function(Xte), fitted_without.decision_function(Xte), rtol=1e-6)


def test_local_term_on_duplicated_rows_warns_nothing_and_stays_finite():
    import warnings

    X = np.ones((200, 4))
    X[:, 1] = np.arange(200) % 3  # three distinct rows: fewer than the centres asked for
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DataNotice)  # the note naming its constant columns
        det = AnomalyDetector(**FAST).fit(X)
    normal, odd = det.decision_function(np.array([[1, 1, 1, 1], [1, 5, 1, 1]]))
    assert np.isfinite(odd) and odd > 100 * normal


def test_local_term_is_saved_with_the_model(fitted, cancer_split, tmp_path):
    _, Xte, _ = cancer_split
    assert fitted.local_weight_ == 4.0 and fitted.local_references_.shape[1] == Xte.shape[1]
    loaded = AnomalyDetector.load(fitted.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.local_references_.numpy(), fitted.local_references_.numpy())
    assert loaded.local_groups_ == fitted.local_groups_ == 20
    assert loaded.local_nearest_scale_ == fitted.local_nearest_scale_ > 0
    np.testing.assert_allclose(loaded.decision_function(Xte), fitted.decision_function(Xte), rtol=1e-6)


@pytest.fixture(scope="module")
def cells_table():
    """Rows on a curved 2-d sheet in 6 columns: enough rows for the local term's cells."""
    rng = np.random.default_rng(3)
    t = rng.uniform(-2, 2, size=(3400, 2))
    X = np.column_stack([t, np.sin(t[:, 0]), t[:, 0] * t[:, 1], np.cos(t[:, 1]), t.sum(1) ** 2])
    return (X + 0.02 * rng.normal(size=X.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def celled(cells_table):
    return AnomalyDetector(epochs=2).fit(cells_table[:3000])


def test_every_training_row_is_a_reference_dealt_into_cells(celled, cells_table):
    refs, centres, groups = celled.local_references_, celled.local_centres_, celled.local_groups_
    assert centres is not None and len(centres) > celled.local_probes_ >= 1 and groups == 20
    layout = refs.view(len(centres), groups, -1, refs.shape[1])
    train = celled._inputs(cells_table[:3000])
    held_out = len(train) - len(np.unique(refs.numpy(), axis=0))
    assert 0 < held_out < 0.2 * len(train)  # every row but the held-out ones
    for cell, centre in zip(layout, centres, strict=True):  # each cell: its rows' mean, every group present
        unique = np.unique(cell.reshape(-1, refs.shape[1]).numpy(), axis=0)
        np.testing.assert_allclose(unique.mean(0), centre.numpy(), atol=1e-4)
        assert all(len(np.unique(g.numpy(), axis=0)) >= 1 for g in cell)


def test_the_cell_search_finds_the_nearest_reference_of_each_group_in_the_probed_cells(celled, cells_table):
    from aekit.apps.anomaly.local_cells import CellSearch

    refs, centres, groups = celled.local_references_, celled.local_centres_, celled.local_groups_
    cells = len(centres)
    # a test half near the training rows, and rows far from them (which all probe the same cells)
    Z = torch.cat([celled._inputs(cells_table[3000:]), celled._inputs(cells_table[3000:3100] * 5 + 10)])
    layout = refs.view(cells, groups, -1, refs.shape[1])
    exact = torch.stack([((Z[:, None] - layout[:, g].reshape(-1, refs.shape[1])) ** 2).sum(2).min(1).values
                         for g in range(groups)], 1)
    everywhere = CellSearch(refs, centres, groups, cells).nearest(Z)
    np.testing.assert_allclose(everywhere[0].numpy(), exact.numpy(), rtol=1e-3, atol=1e-3)
    distances, index = celled._local_search(refs).nearest(Z)
    small = CellSearch(refs, centres, groups, celled.local_probes_)
    small.block, small.chunk = 64, 16  # many blocks, many products per cell: the same answer
    np.testing.assert_array_equal(small.nearest(Z)[1].numpy(), index.numpy())
    for search, found in ((CellSearch(refs, centres, groups, cells), everywhere[0]), (small, distances)):
        # without the arg-minima (what scores take): the same distances, every cell probed or two
        np.testing.assert_allclose(search.nearest(Z, with_index=False)[0].numpy(), found.numpy(), rtol=1e-5, atol=1e-5)
    probed = (torch.cdist(Z, centres).topk(celled.local_probes_, largest=False).indices)
    in_probed = torch.stack([torch.stack([((Z[i] - layout[probed[i], g].reshape(-1, refs.shape[1])) ** 2).sum(1).min()
                                          for g in range(groups)]) for i in range(len(Z))])
    np.testing.assert_allclose(distances.numpy(), in_probed.numpy(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(((Z[:, None] - refs[index]) ** 2).sum(2).numpy(), distances.numpy(), rtol=1e-3, atol=1e-3)
    assert (index // layout[0, 0].shape[0] % groups == torch.arange(groups)).all()  # group g's reference for group g
    near = distances[:400] <= exact[:400] * (1 + 1e-3) + 1e-3
    assert near.float().mean() > 0.9  # most rows find the true nearest in their probed cells


def test_the_two_nearest_cells_by_packed_minima_equal_a_sort():
    """torch's and numpy's two-smallest (element-wise minima of values with their column
    packed in) pick what a sort picks, where no two values are within 2^-17 of each other."""
    from aekit.apps.anomaly.light import _smallest as numpy_smallest
    from aekit.apps.anomaly.local_cells import _smallest

    rng = np.random.default_rng(0)
    for columns in (2, 64, 128):
        values = rng.permutation(np.arange(1, 500 * columns + 1)).reshape(500, columns).astype(np.float32) / 7
        expected = np.argsort(values, axis=1)[:, :2]
        np.testing.assert_array_equal(_smallest(torch.tensor(values), 2).numpy(), expected)  # [rows, cells]
        np.testing.assert_array_equal(numpy_smallest(np.ascontiguousarray(values.T), 2), expected)  # [cells, rows]
    values[:, 5] = values[:, 9] = 0.0  # ties at zero (a row on a centre) go to the first
    np.testing.assert_array_equal(_smallest(torch.tensor(values), 2).numpy(), [[5, 9]] * 500)
    np.testing.assert_array_equal(numpy_smallest(np.ascontiguousarray(values.T), 2), [[5, 9]] * 500)
    odd = values[:, 10:13]  # 3 cells: arg-minimum passes in numpy, packed minima in torch
    expected = np.argsort(odd, axis=1)[:, :2]
    np.testing.assert_array_equal(numpy_smallest(np.ascontiguousarray(odd.T), 2), expected)
    np.testing.assert_array_equal(_smallest(torch.tensor(odd), 2).numpy(), expected)


def test_scoring_on_several_threads_equals_one_and_restores_torchs_threads(celled, cells_table, monkeypatch):
    from aekit import threads
    from aekit.apps.anomaly import base

    monkeypatch.setattr(threads, "MIN_SPAN_ROWS", 64)
    rows = np.concatenate([cells_table] * 2)  # 6,800 rows: spans of 2,048 over blocks of 4,096
    monkeypatch.setattr(celled, "_score_block", 4096)
    monkeypatch.setattr(base, "SCORE_VALUES", 0)  # blocks of 4,096 rows
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        serial = celled.score_explain(rows)
        torch.set_num_threads(3)
        split = celled.score_explain(rows)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(split[0], serial[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(split[1].to_numpy(), serial[1].to_numpy(), rtol=1e-5, atol=1e-6)

    spans: list[tuple[int, int]] = []
    torch.set_num_threads(2)
    try:
        threads.for_each_span(lambda start, stop: spans.append((start, stop)), 1000, 65_536)
    finally:
        torch.set_num_threads(before)
    assert sorted(spans) == [(0, 500), (500, 1000)]  # fewer rows than a block: still every thread a span

    def fails(start: int, stop: int) -> None:
        if start:
            raise ValueError("boom")
    with pytest.raises(ValueError, match="boom"):
        torch.set_num_threads(2)
        try:
            threads.for_each_span(fails, 1000, 1000)
        finally:
            assert torch.get_num_threads() == 2
            torch.set_num_threads(before)


def test_an_arrays_spans_are_scaled_by_the_threads_that_score_them(celled, cells_table, monkeypatch):
    """A numeric array is scaled span by span in the scoring threads (``SpanRows``): the
    same scores as scaling it whole first; a bad value in any span raises the whole array's
    error, naming every bad column; a frame is still transformed whole."""
    from aekit import threads
    from aekit.apps.anomaly import base
    from aekit.data.adapter_base import SpanRows

    monkeypatch.setattr(threads, "MIN_SPAN_ROWS", 64)
    monkeypatch.setattr(celled, "_score_block", 512)
    monkeypatch.setattr(base, "SCORE_VALUES", 0)  # spans of 256 rows on 2 threads
    rows = cells_table.astype(np.float64)
    assert isinstance(celled.adapter_.transform_by_spans(rows), SpanRows)
    frame = pd.DataFrame(rows, columns=[f"x{j}" for j in range(rows.shape[1])])
    assert isinstance(celled.adapter_.transform_by_spans(frame), torch.Tensor)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        whole = celled._score_blocks(celled._inputs(rows), per_feature=False)[0]
        np.testing.assert_array_equal(celled.decision_function(rows), whole)
        explained = celled.score_explain_inputs(celled._inputs(rows))
        scores, parts = celled.score_explain(rows)
        np.testing.assert_array_equal(scores, explained[0])
        np.testing.assert_array_equal(parts.to_numpy(), explained[1])
        bad = rows.copy()
        bad[10, 1] = np.nan
        bad[3000, 4] = np.inf  # a later span's bad column, also named
        with pytest.raises(DataError, match=r"NaN or inf in column\(s\) \['x1', 'x4'\]"):
            celled.decision_function(bad)
        with pytest.raises(DataError, match="float32 range"):
            celled.decision_function(np.where(np.arange(len(rows))[:, None] == 2000, 1e300, rows))
    finally:
        torch.set_num_threads(before)
    with pytest.raises(DataError, match="X has 5 columns"):
        celled.decision_function(rows[:, :5])


def test_training_rows_are_scored_without_themselves(celled, cells_table):
    """Every training row is a reference; its training score must not count it (PyOD's kNN
    scores training rows leave-one-out), or a contamination threshold flags too many new rows."""
    scores = celled.decision_function(cells_table[:3000])  # each training row finds itself at distance 0
    assert (celled.decision_scores_ >= scores * (1 - 1e-5) - 1e-6).all()  # float32 rounding aside
    assert (celled.decision_scores_ > scores * 1.01).mean() > 0.5  # the training rows (85%) score higher
    assert celled.labels_.mean() == pytest.approx(0.1, abs=0.01)


def test_a_model_with_cells_round_trips_and_refuses_broken_cells(celled, cells_table, tmp_path):
    path = celled.save(tmp_path / "m")
    loaded = AnomalyDetector.load(path)
    assert (loaded.local_groups_, loaded.local_probes_) == (celled.local_groups_, celled.local_probes_)
    np.testing.assert_array_equal(loaded.local_centres_.numpy(), celled.local_centres_.numpy())
    np.testing.assert_allclose(loaded.decision_function(cells_table[3000:]), celled.decision_function(cells_table[3000:]),
                               rtol=1e-6)
    cells = len(celled.local_centres_)
    rewrite_config(path, lambda c: c["state"]["local"].update(probes=cells + 1))
    with pytest.raises(ModelFileError, match="probes must be an integer from 1 to"):
        AnomalyDetector.load(path)
    rewrite_config(path, lambda c: c["state"]["local"].update(probes=1, cells=cells * 2))
    with pytest.raises(ModelFileError, match="centres are missing or are not"):
        AnomalyDetector.load(path)


def test_a_large_table_keeps_at_most_max_rows_references(cells_table, monkeypatch):
    from aekit.apps.anomaly import local_cells

    monkeypatch.setattr(local_cells, "MAX_ROWS", 1000)
    det = AnomalyDetector(epochs=1).fit(cells_table[:3000])
    assert len(np.unique(det.local_references_.numpy(), axis=0)) == 1000
    assert local_cells.cell_count(1000) == len(det.local_centres_) == 2


def test_local_term_is_the_larger_of_the_nearest_row_and_the_groups_mean(fitted, cancer_split, tmp_path):
    _, Xte, _ = cancer_split
    Z = fitted._inputs(Xte)
    refs, groups = fitted.local_references_, fitted.local_groups_
    nearest = [((Z[:, None] - g[None]) ** 2).sum(2).min(1).values for g in refs.view(groups, -1, refs.shape[1])]
    mean, smallest = np.mean([n.numpy() for n in nearest], 0), np.min([n.numpy() for n in nearest], 0)
    by_mean, by_nearest = mean / fitted.local_scale_, smallest / fitted.local_nearest_scale_
    assert 0.1 < (by_nearest > by_mean).mean() < 0.9  # each statistic decides for some rows
    term = fitted._local_term(Z, per_feature=False)[0].numpy()
    np.testing.assert_allclose(term, np.maximum(by_mean, by_nearest) * fitted.local_weight_, rtol=1e-4)
    total, parts = fitted._local_term(Z, per_feature=True)
    np.testing.assert_allclose(total.numpy(), term, rtol=1e-4)
    np.testing.assert_allclose(parts.sum(1).numpy(), term, rtol=1e-4)
    to_nearest = ((Z[:, None] - refs[None]) ** 2).sum(2).min(1)[1]  # the nearest row's per-column differences
    diffs = ((Z - refs[to_nearest]) ** 2).numpy()
    np.testing.assert_allclose(parts.numpy(), diffs * (term / diffs.sum(1))[:, None], rtol=1e-3, atol=1e-6)
    # a row equal to a reference has no column that stands out: the term is shared evenly
    same = fitted._local_term(refs[:2], per_feature=True)[1]
    np.testing.assert_allclose(same.numpy(), np.repeat(same.sum(1, keepdim=True).numpy() / Z.shape[1], Z.shape[1], 1),
                               rtol=1e-5)
    path = fitted.save(tmp_path / "m")
    for bad in (0, -1.0, "1"):
        rewrite_config(path, lambda c, v=bad: c["state"]["local"].update(nearest_scale=v))
        with pytest.raises(ModelFileError, match="nearest_scale must be a finite number|scales hold"):
            AnomalyDetector.load(path)
    # a model saved before 0.8.0 scores the mean over its groups
    rewrite_config(path, lambda c: c["state"]["local"].pop("nearest_scale"))
    np.testing.assert_allclose(AnomalyDetector.load(path)._local_term(Z, per_feature=False)[0].numpy(),
                               by_mean * fitted.local_weight_, rtol=1e-4)
    # a model saved before issue 33 (k-means centres, no groups) scores the nearest of all
    rewrite_config(path, lambda c: c["state"]["local"].pop("groups"))
    old = AnomalyDetector.load(path)
    assert old.local_groups_ == 1
    nearest_of_all = torch.stack(nearest).min(0).values.numpy() * fitted.local_weight_ / fitted.local_scale_
    np.testing.assert_allclose(old._local_term(Z, per_feature=False)[0].numpy(), nearest_of_all, rtol=1e-4)
    rewrite_config(path, lambda c: c["state"]["local"].update(groups=0))
    with pytest.raises(ModelFileError, match="groups must be an integer >= 1"):
        AnomalyDetector.load(path)
    rewrite_config(path, lambda c: c["state"]["local"].update(groups=len(refs) + 1))
    with pytest.raises(ModelFileError, match="do not make .* equal groups"):
        AnomalyDetector.load(path)


def test_each_term_is_in_units_of_its_median_on_held_out_rows(fitted, cancer_split):
    # medians, not means: anomalies among the training rows would inflate a mean unit
    Xtr, _, _ = cancer_split
    Z = fitted._inputs(Xtr)
    held_out = Z[fitted._split(len(Z))[1]]
    with torch.inference_mode():
        errors, code = fitted._reconstruction_errors(fitted.models_[0], held_out)
        rec = errors.flatten(1) @ fitted.feature_weights_[0].flatten()
        latent = fitted._member_extra(0, held_out, code) / fitted.latent_weight
        local = fitted._local_term(held_out, per_feature=False)[0] / fitted.local_weight_
    for term in (rec, latent, local):
        assert float(term.median()) == pytest.approx(1.0, rel=1e-3)


def test_the_histogram_term_is_zero_for_half_the_held_out_rows_and_its_weight_for_a_tenth(fitted, cancer_split):
    # its own unit: the summed rarities less their held-out median, over their 90th percentile less it
    Xtr, _, _ = cancer_split
    Z = fitted._inputs(Xtr)
    held_out = Z[fitted._split(len(Z))[1]]
    with torch.inference_mode():
        term = fitted._histogram_term(held_out, per_feature=False)[0].numpy() / fitted.histogram_weight_
    assert fitted.histogram_weight_ == 2.0
    assert np.mean(term == 0) == pytest.approx(0.5, abs=0.05)
    assert np.quantile(term, 0.9) == pytest.approx(1.0, rel=1e-3)


def test_a_group_of_anomalies_among_the_training_rows_stays_visible_to_the_histogram_term():
    """6% of the training rows in a tight group: the autoencoder and the local term learn it
    as normal, but its values are rare in their columns, where the histogram term sees it."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(1300, 8))
    group = np.where(rng.random(8) < 0.5, 2.5, -2.5) + 0.3 * rng.normal(size=(80, 8))
    X = np.vstack([normal[:1000], group[:60]]).astype(np.float32)
    test, y = np.vstack([normal[1000:], group[60:]]).astype(np.float32), np.r_[np.zeros(300), np.ones(20)]
    without = roc_auc_score(y, AnomalyDetector(**FAST, histogram_weight=0).fit(X).decision_function(test))
    det = AnomalyDetector(**FAST).fit(X)
    assert roc_auc_score(y, det.decision_function(test)) > max(0.98, without + 0.01)
    scores, parts = det.score_explain(test)
    with torch.inference_mode():
        term, term_parts = det._histogram_term(det._inputs(test), per_feature=True)
    np.testing.assert_allclose(term_parts.sum(1).numpy(), term.numpy(), rtol=1e-5, atol=1e-6)
    assert (term_parts >= 0).all() and (parts.to_numpy() >= 0).all()


def test_the_histogram_term_is_saved_checked_and_optional(fitted, cancer_split, tmp_path):
    import copy

    _, Xte, _ = cancer_split
    path = fitted.save(tmp_path / "m")
    loaded = AnomalyDetector.load(path)
    np.testing.assert_array_equal(loaded.histograms_.table, fitted.histograms_.table)
    np.testing.assert_allclose(loaded.decision_function(Xte), fitted.decision_function(Xte), rtol=1e-6)
    for bad in (-1.0, None, "2"):
        rewrite_config(path, lambda c, v=bad: c["state"]["histogram"].update(weight=v))
        with pytest.raises(ModelFileError, match="histogram term's weight must be a finite number"):
            AnomalyDetector.load(path)
    rewrite_config(path, lambda c: c["state"]["histogram"].update(weight=2.0, unit=0))
    with pytest.raises(ModelFileError, match="histogram term's median and unit"):
        AnomalyDetector.load(path)
    rewrite_config(path, lambda c: c["state"]["histogram"].update(unit=fitted.histograms_.unit))

    def negative_rarity(tensors):
        tensors["histogram/table"] = -tensors["histogram/table"]

    rewrite_tensors(path, negative_rarity)
    with pytest.raises(ModelFileError, match="histogram term's tensors hold NaN, inf, negative"):
        AnomalyDetector.load(path)
    rewrite_config(path, lambda c: c["state"].pop("histogram"))  # as a model saved before 0.9.0
    old = AnomalyDetector.load(path)
    assert old.histograms_ is None and old.histogram_weight_ == 0
    fitted_without = copy.copy(fitted)
    fitted_without.histograms_ = None
    np.testing.assert_allclose(old.decision_function(Xte), fitted_without.decision_function(Xte), rtol=1e-6)
    with pytest.raises(ParameterError, match="histogram_weight must be >= 0"):
        AnomalyDetector(histogram_weight=-1).fit(np.zeros((50, 3)))


def test_sklearn_clone_pipeline_and_params(cancer_split):
    Xtr, Xte, _ = cancer_split
    det = AnomalyDetector(**FAST, code_size=4)
    params = det.get_params()
    assert params["code_size"] == 4 and "threshold" in params
    twin = clone(det)
    assert twin.get_params() == params and not hasattr(twin, "models_")
    vae_params = VAEAnomalyDetector(beta=0.5).get_params()
    assert vae_params["beta"] == 0.5 and "n_estimators" in vae_params
    assert clone(VAEAnomalyDetector(beta=0.5, epochs=3)).get_params()["epochs"] == 3
    pipe = Pipeline([("log", FunctionTransformer(np.log1p)), ("ae", AnomalyDetector(**FAST))]).fit(Xtr.to_numpy())
    assert pipe.decision_function(Xte.to_numpy()).shape == (len(Xte),)


def test_numpy_and_dataframe_give_the_same_scores(fitted, cancer_split):
    _, Xte, _ = cancer_split
    np.testing.assert_allclose(fitted.decision_function(Xte.to_numpy()), fitted.decision_function(Xte), rtol=1e-6)


def test_same_seed_same_scores(cancer_split):
    Xtr, Xte, _ = cancer_split
    a = AnomalyDetector(**FAST, random_state=5).fit(Xtr).decision_function(Xte)
    b = AnomalyDetector(**FAST, random_state=5).fit(Xtr).decision_function(Xte)
    np.testing.assert_array_equal(a, b)


def test_columns_matched_by_name(fitted, cancer_split):
    _, Xte, _ = cancer_split
    reordered = Xte[Xte.columns[::-1]].assign(extra=1.0)
    np.testing.assert_allclose(fitted.decision_function(reordered), fitted.decision_function(Xte))
    with pytest.raises(DataError, match="missing column.*mean radius"):
        fitted.decision_function(Xte.drop(columns=["mean radius"]))
    with pytest.raises(DataError, match="30"):
        fitted.decision_function(Xte.to_numpy()[:, :5])
    with pytest.raises(DataError, match=r"a pandas Series of 30 values: pass one row as a one-row DataFrame "
                                        r"\(X.iloc\[\[0\]\]"):
        fitted.decision_function(Xte.iloc[0])  # a row, as sklearn users index one
    with pytest.raises(DataError, match=r"one column as X\[\['mean radius'\]\]"):
        AnomalyDetector(**FAST).fit(Xte["mean radius"])


@pytest.mark.parametrize("make, message", [
    (lambda X: X.assign(**{"mean area": np.where(np.arange(len(X)) == 3, np.nan, X["mean area"])}),
     r"NaN or inf.*mean area'\] \(the first in the row labelled \d+; an empty field"),  # the test rows' own labels
    (lambda X: X.assign(**{"mean area": np.inf}), r"NaN or inf.*\(the first in the row labelled 0\);"),
    (lambda X: X.astype({"mean area": object}).assign(**{"mean area": ["big"] + [1.0] * (len(X) - 1)}), "non-number.*big"),
])
def test_bad_values_at_score_time_raise_naming_the_column(fitted, cancer_split, make, message):
    _, Xte, _ = cancer_split
    with pytest.raises(DataError, match=message):
        fitted.decision_function(make(Xte.copy()))


def test_impute_fills_missing_values(cancer_split):
    Xtr, Xte, _ = cancer_split
    holes = Xtr.copy()
    holes.iloc[::5, 2] = np.nan
    det = AnomalyDetector(**FAST, impute="median").fit(holes)
    Xte = Xte.copy()
    Xte.iloc[0, 2] = np.inf
    assert np.all(np.isfinite(det.decision_function(Xte)))


def test_a_column_of_many_categories_does_not_swamp_the_number_columns():
    """One-hot features share their column's weight: a column of 300 categories unrelated to
    the numbers leaves the anomalies in the number columns on top (weighted one by one, each
    rare category's row scored as an anomaly: AUC-ROC 0.997 -> 0.86 at 500 categories,
    benchmarks/anomaly_table_shapes.py)."""
    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(3, 6))

    def rows(n: int, anomalies: int) -> tuple[pd.DataFrame, np.ndarray]:
        x = rng.normal(size=(n, 3)) @ loadings + 0.2 * rng.normal(size=(n, 6))
        x[:anomalies] += 2 * rng.normal(size=(anomalies, 6))
        p = 1 / np.arange(1, 301) ** 1.1
        city = rng.choice(300, n, p=p / p.sum())
        return pd.DataFrame(x).add_prefix("x").assign(city=[f"c{c}" for c in city]), np.arange(n) < anomalies

    train, _ = rows(1500, 0)
    test, y = rows(600, 30)
    quick = dict(FAST, n_estimators=1, epochs=20)
    det = AnomalyDetector(**quick).fit(train)
    assert roc_auc_score(y, det.decision_function(test)) > 0.95
    numbers_only = AnomalyDetector(**quick).fit(train.drop(columns="city"))
    assert roc_auc_score(y, det.decision_function(test)) > roc_auc_score(
        y, numbers_only.decision_function(test.drop(columns="city"))) - 0.03


def test_a_heavy_tailed_column_is_named_in_a_note_and_logging_it_as_the_note_says_helps():
    """A lognormal amount (sigma 2) unrelated to the anomalies: its large values score as
    anomalies in robust units. Logging such columns by default was refused on ADBench (0.11
    AUC-ROC lost where the anomalies lie in the tail), so fit names them and says how."""
    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(3, 6))

    def rows(n: int, anomalies: int) -> tuple[pd.DataFrame, np.ndarray]:
        x = rng.normal(size=(n, 3)) @ loadings + 0.2 * rng.normal(size=(n, 6))
        x[:anomalies] += 2 * rng.normal(size=(anomalies, 6))
        return pd.DataFrame(x).add_prefix("x").assign(amount=rng.lognormal(3, 2, n)), np.arange(n) < anomalies

    train, _ = rows(1500, 0)
    test, y = rows(600, 30)
    quick = dict(FAST, n_estimators=1, epochs=20)
    with pytest.warns(DataNotice, match=r"column\(s\) \['amount'\] have a heavy right tail .* "
                                        r"log_columns=\['amount'\] \(--log-columns amount\)"):
        plain = AnomalyDetector(**quick).fit(train)
    assert plain.preprocessor_.heavy_tailed_ == ["amount"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataNotice)
        logged = AnomalyDetector(**quick, log_columns=["amount"]).fit(train)
    assert roc_auc_score(y, logged.decision_function(test)) > roc_auc_score(y, plain.decision_function(test)) + 0.01


def test_a_time_kept_as_a_feature_is_named_in_a_note():
    """A time column that never decreases down the training rows: rows of a later period lie
    beyond its training values and score high (a median of hundreds against about 5 here)."""
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"Time": np.sort(rng.uniform(0, 1e5, 400)), "a": rng.normal(size=400),
                         "b": rng.normal(size=400)})
    with pytest.warns(DataNotice, match=r"column\(s\) \['Time'\] never decrease down the training rows .* "
                                        r"\(--drop-cols Time; for an anomaly detector of a time series, give "
                                        r"the time as --time-col\)"):
        det = AnomalyDetector(**dict(FAST, n_estimators=1, epochs=10)).fit(rows)
    later = rows.assign(Time=rows.Time + 1e5)
    assert np.median(det.decision_function(later)) > 20 * np.median(det.decision_function(rows))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataNotice)
        AnomalyDetector(**dict(FAST, n_estimators=1, epochs=10)).fit(rows.drop(columns="Time"))


def test_a_label_left_among_the_features_is_named_in_a_note():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300),
                         "Class": (rng.random(300) < 0.05).astype(int)})
    with pytest.warns(DataNotice, match=r"column\(s\) \['Class'\] named like a label hold at most 10 values: .* "
                                        r"\(--label-col Class, or --drop-cols\)"):
        AnomalyDetector(**dict(FAST, n_estimators=1, epochs=2)).fit(rows)
    with warnings.catch_warnings():  # a column of that name with many values is a feature
        warnings.simplefilter("error", DataNotice)
        AnomalyDetector(**dict(FAST, n_estimators=1, epochs=2)).fit(rows.assign(Class=rng.normal(size=300)))


def test_a_table_of_repeated_rows_keeps_normal_scores_in_their_unit():
    """Every row one of 15 patterns, each repeated about 100 times: the held-out rows sit on
    references, so the local term's units come out about 0. They have floors: a normal row
    scored up to 30,000 before 0.9.9 (its distances' rounding, or a group lacking its
    pattern, over a unit of 2e-5); about 200 now, against a median of about 4."""
    rng = np.random.default_rng(0)
    patterns = rng.normal(size=(15, 3)) @ rng.normal(size=(3, 8))
    train = pd.DataFrame(patterns[rng.integers(0, 15, 1500)]).add_prefix("x")
    normal = pd.DataFrame(patterns[rng.integers(0, 15, 300)]).add_prefix("x")
    det = AnomalyDetector(**dict(FAST, n_estimators=1, epochs=20)).fit(train)
    scores = det.decision_function(normal)
    assert det.local_scale_ > 1e-3 and scores.max() < 500 and np.median(scores) < 10
    assert det.decision_function(normal + 0.5).min() > scores.max()  # moved rows still far above


def test_training_input_edge_cases():
    rng = np.random.default_rng(0)
    with pytest.raises(DataError, match="at least 8 rows"):
        AnomalyDetector(**FAST).fit(rng.normal(size=(1, 4)))
    with pytest.raises(DataError, match="every feature column is constant"):
        AnomalyDetector(**FAST).fit(np.ones((50, 3)))
    with pytest.raises(DataError, match="1-D"):
        AnomalyDetector(**FAST).fit(rng.normal(size=50))
    X = rng.normal(size=(100, 4))
    X[:, 2] = 5.0  # one constant column is fine
    det = AnomalyDetector(**FAST).fit(X)
    moved = X[:5].copy()
    moved[:, 2] = 50.0
    assert det.decision_function(moved).min() > det.decision_function(X).max()
    with pytest.raises(NotFittedError):
        AnomalyDetector().decision_function(X)
    import scipy.sparse

    for fit_or_score in (lambda s: AnomalyDetector(**FAST).fit(s), det.decision_function):
        with pytest.raises(DataError, match=r"sparse matrix \(csr_matrix\).*X.toarray\(\)"):
            fit_or_score(scipy.sparse.csr_matrix(X))
    with pytest.raises(ValueError, match="n_estimators"):
        AnomalyDetector(n_estimators=0).fit(X)


def test_one_row_can_be_scored(fitted, cancer_split):
    _, Xte, _ = cancer_split
    assert fitted.decision_function(Xte.iloc[:1]).shape == (1,)
    assert fitted.decision_function(pd.DataFrame(columns=Xte.columns, dtype=float)).shape == (0,)


@pytest.mark.parametrize("trim", [0.0, 0.1])
def test_anomalies_planted_in_the_training_rows_still_rank_above_the_normal_ones(trim):
    # 5% of the training rows break the normal rows' correlations: a detector trained on all
    # of them (as most users' tables are) must still find them, with or without trimming
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(950, 3)) @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(950, 10))
    planted = rng.normal(scale=1.5, size=(50, 10))
    X = np.vstack([normal, planted]).astype(np.float32)
    y = np.r_[np.zeros(950), np.ones(50)]
    det = AnomalyDetector(**FAST, trim=trim).fit(X)
    assert roc_auc_score(y, det.decision_scores_) > 0.95


def test_trim_is_checked():
    with pytest.raises(Exception, match="trim"):
        AnomalyDetector(trim=0.9).fit(np.zeros((50, 3)))


def test_a_clump_of_anomalies_in_the_training_rows_is_not_forgotten():
    """Anomalies that slipped into the training rows near each other are each other's nearest
    rows: the local term's nearest-row statistic alone forgets new rows of their clump, its
    mean over the groups does not, and the term (the larger of the two) flags both the clump
    and lone anomalies."""
    rng = np.random.default_rng(1)
    normal = rng.normal(size=(1200, 3)) @ rng.normal(size=(3, 10)) + 0.1 * rng.normal(size=(1200, 10))
    clump = rng.normal(scale=2.0, size=10) + 0.05 * rng.normal(size=(40, 10))  # 3% of the training rows
    det = AnomalyDetector(**FAST).fit(np.vstack([normal[:1000], clump[:30]]).astype(np.float32))
    lone = rng.normal(scale=1.5, size=(10, 10))
    Z = det._inputs(np.vstack([normal[1000:], clump[30:], lone]).astype(np.float32))
    with torch.inference_mode():
        term = det._local_term(Z, per_feature=False)[0].numpy()
        nearest = det._local_search(det.local_references_).nearest(Z, with_index=False)[0].amin(1).numpy()
    is_clump, is_lone = np.r_[np.zeros(200), np.ones(10), np.zeros(10)], np.r_[np.zeros(210), np.ones(10)]
    clump_rows, lone_rows = is_lone == 0, is_clump == 0
    assert roc_auc_score(is_clump[clump_rows], nearest[clump_rows]) < 0.5  # why the mean is in the term
    assert roc_auc_score(is_clump[clump_rows], term[clump_rows]) > 0.95
    assert roc_auc_score(is_lone[lone_rows], term[lone_rows]) > 0.95


def test_a_small_table_scores_its_training_rows_without_themselves():
    """Each group of references keeps at least 2 rows, so that a training row scored
    leave-one-out finds another row in every group (a group of itself alone would count it
    at distance 0, and make the nearest-row statistic vanish)."""
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(30, 2)) @ rng.normal(size=(2, 5))).astype(np.float32)
    det = AnomalyDetector(**FAST).fit(X)
    groups, refs = det.local_groups_, det.local_references_
    assert 1 < groups <= len(np.unique(refs.numpy(), axis=0)) // 2
    assert all(len(np.unique(g.numpy(), axis=0)) >= 2 for g in refs.view(groups, -1, refs.shape[1]))
    assert (det.decision_scores_ > det.decision_function(X) * 1.01).mean() > 0.5  # no row finds itself


def test_class_breakdown_counts_each_label_value_and_skips_what_is_no_class():
    """Each label value's rows, share flagged and AUC-ROC against the normal rows (None for
    the normal value); a column of more than MAX_CLASSES values (an ID) gets no breakdown."""
    from aekit.apps.anomaly.report import MAX_CLASSES, class_breakdown, label_classes

    scores = np.array([0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 0.25, 0.35])
    labels = np.array(["ok", "ok", "ok", "ok", "dos", "dos", " probe", "probe "])  # stripped as binary_labels strips
    y = (np.char.strip(labels.astype(str)) != "ok").astype(int)
    found = {c["class"]: c for c in class_breakdown(scores, label_classes(labels), y, threshold=1.0)}
    assert list(found) == ["dos", "ok", "probe"]
    assert found["ok"] == {"class": "ok", "normal": True, "rows": 4, "flagged": 0.0, "auc_roc": None}
    assert found["dos"]["auc_roc"] == 1.0 and found["dos"]["flagged"] == 1.0
    assert found["probe"]["auc_roc"] == pytest.approx(0.625) and found["probe"]["flagged"] == 0.0  # hidden among normal
    rng = np.random.default_rng(0)  # ties count half, as roc_auc_score counts them
    wide, kinds = rng.integers(0, 20, 3000).astype(float), rng.choice(["ok", "a", "b"], 3000, p=[0.8, 0.1, 0.1])
    flags = (kinds != "ok").astype(int)
    for c in class_breakdown(wide, label_classes(kinds), flags, 10.0):
        if not c["normal"]:
            mask = (kinds == "ok") | (kinds == c["class"])
            assert c["auc_roc"] == pytest.approx(roc_auc_score(flags[mask], wide[mask]), abs=1e-12)
    many = np.arange(MAX_CLASSES + 1).astype(str)
    assert class_breakdown(np.arange(len(many), dtype=float), label_classes(many), np.ones(len(many), int), 1.0) == []


@pytest.mark.parametrize("normal_value", ["0", "0.0", 0, " 0 "])
def test_a_number_label_column_matches_its_normal_value_however_the_number_is_written(normal_value):
    """A label column with a gap reads as floats: --normal-value 0 found no row among 0.0 and 1.0."""
    from aekit.apps.anomaly.report import binary_labels, is_normal_value, label_classes

    for labels in (pd.Series([0.0, 1.0, 0.0, 2.0]), pd.Series([0, 1, 0, 2])):
        np.testing.assert_array_equal(binary_labels(labels, normal_value), [0, 1, 0, 1])
        assert list(label_classes(labels).categories) == ["0", "1", "2"]
    text = pd.Series(["0", "00", "1"])  # text labels are compared as written
    np.testing.assert_array_equal(is_normal_value(text, "0"), [True, False, False])
    for written in ("False", "false", "FALSE", "0", "no", "f", "N"):  # a boolean label column, however false is written
        np.testing.assert_array_equal(is_normal_value(pd.Series([True, False]), written), [False, True])


def test_the_contributions_plot_writes_each_row_s_score_beside_its_bar(tmp_path, monkeypatch):
    """The columns' sum was written there: it leaves out the code term, so it did not fall
    down the rows as the scores, which order them, do."""
    import matplotlib.axes

    from aekit import plots

    written = []
    real = matplotlib.axes.Axes.text
    monkeypatch.setattr(matplotlib.axes.Axes, "text", lambda ax, x, y, s, **kw: written.append(s) or real(ax, x, y, s, **kw))
    contrib = pd.DataFrame({"a": [5.0, 1.0], "b": [1.0, 2.0]}, index=[7, 3])
    plots.contributions_plot(contrib, tmp_path / "c.png", scores=pd.Series([812.5, 40.25], index=[7, 3]))
    assert written == ["812", "40.2", "score"]
    written.clear()
    plots.contributions_plot(contrib, tmp_path / "d.png")
    assert written == ["6", "3", "sum"]


def test_epochs_auto_trains_a_large_table_for_a_budget_of_steps_and_a_small_one_for_50_epochs(monkeypatch):
    """200,000 rows took 50 epochs of 781 steps each; a 38,000-row table scored the same after
    10, 20 or 50 epochs. Tables of up to about 20,000 training rows keep their 50 epochs."""
    from aekit.apps.anomaly import detector
    from aekit.training import steps_to_epochs

    assert AnomalyDetector().epochs == "auto"
    budget = (detector.AUTO_STEPS, detector.MIN_AUTO_EPOCHS, detector.MAX_AUTO_EPOCHS)
    assert steps_to_epochs(17_000, 256, *budget) == 50  # the throughput benchmark's 20,000-row model
    assert steps_to_epochs(32_000, 256, *budget) == 32 and steps_to_epochs(170_000, 256, *budget) == 7
    assert steps_to_epochs(5_000_000, 256, *budget) == 3
    monkeypatch.setattr(detector, "AUTO_STEPS", 100)  # a small table standing in for a large one
    X = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)
    det = AnomalyDetector(batch_size=32, patience=1000).fit(X)  # 340 training rows: 11 steps an epoch
    assert len(det.training_history_[0]) == 10
    assert len(AnomalyDetector(batch_size=32, patience=1000, epochs=12).fit(X).training_history_[0]) == 12
