"""What every reconstruction-based detector shares, whatever its data: the seed ensemble,
the score (standardised reconstruction error, a density term on the code and a local density
term on the input), thresholds, the PyOD / scikit-learn surface, and its state in the model
directory.

Data, splits, training, checkpoints and the model directory come from the core's
``FittedModel``; a subclass supplies only ``_build_model`` (an AutoEncoder for one sample's
shape) and, where it scores differently, ``_reconstruction_errors`` / ``_member_extra``.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import shlex
import warnings
from typing import Any

import numpy as np
import torch

from ...autoencoder import AutoEncoder
from ...data.adapter_base import SpanRows
from ...data.images import ImageSpec
from ...data.preprocess import some_columns
from ...checks import check_choice, check_float, check_int
from ...errors import DataNotice, ModelFileError, ParameterError
from ...estimator import FittedModel, TensorGroups
from ...io import SCORE_GRAPH_FILE
from ...nn.subnormal import flush_subnormal_
from ...threads import for_each_span
from . import local_cells
from .code_mixture import CodeMixture, fit_code_mixture
from .histograms import ColumnHistograms, fit_histograms
from .light import FEATURE_WEIGHTINGS, VARIANCE_FLOOR, WEIGHTINGS
from .robust import TrimmedObjective
from .thresholds import FPR_READS, ThresholdRule, parse_threshold, resolve_threshold

# the local term weighs twice the two autoencoder terms together (chosen on group A, the
# synthetic and the digit sets, clean and contaminated training rows: BENCHMARKS.md, issue 33)
DEFAULT_LOCAL_WEIGHT = 4.0
# the histogram term (histograms.py) weighs half the local term (chosen on the same groups)
DEFAULT_HISTOGRAM_WEIGHT = 2.0
MIN_HELD_OUT = 10  # held-out rows a term's unit needs; with fewer, the training rows set it
SCORE_BLOCK = 16_384  # rows per forward pass when scoring, at least (fastest of 4k-64k on 2 cores)
# ... and up to 4x as many while a block's inputs hold at most SCORE_VALUES numbers: a table of
# 30 columns in blocks of 65,536 rows gives each thread's search fewer, larger products per cell,
# and so fewer Python steps, where the threads wait on each other for the GIL (a million rows
# in 0.80 s instead of 0.85 s in blocks of 16,384; medians of 6 alternated runs)
SCORE_VALUES = 1 << 21
MAX_ESTIMATORS = 100
# The local density term: the training rows (local_cells.reference_rows of them) dealt into
# groups; a row's local distance is built from its squared distance to each group's nearest
# row, found among the references of its nearest cells. Series windows: LOCAL_GROUPS groups,
# and the mean over them. Tables: NEAREST_GROUPS groups, and the larger of the nearest of
# them (the nearest row) and their mean, each in its own unit (_local_distance).
LOCAL_GROUPS = 5
NEAREST_GROUPS = 20
# the local term's units: at least this share of the median distance between rows that differ
# (repeated rows: ``_fit_local``); 0.1 cost tables of 200 patterns repeated 0.013 AUC-ROC
RESOLUTION_SHARE = 0.02


class ReconstructionDetector(FittedModel):
    """Base class; see ``AnomalyDetector`` for the parameters and the score."""

    _bottleneck = "continuous"
    _score_block = SCORE_BLOCK
    _fitted_attr = "threshold_"
    # whether a contamination threshold reads the held-out samples' scores: where the
    # network rebuilds its training samples much better than new ones (images)
    _contamination_held_out = False
    _fpr_reads_training = False  # an fpr threshold reads the training scores too (_fpr_read)

    @staticmethod
    def _unit_rows(Z_train: torch.Tensor, Z_val: torch.Tensor | None) -> torch.Tensor:
        """The rows the terms' units are measured on: the held-out rows, or the training rows
        where fewer than ``MIN_HELD_OUT`` were held out."""
        return Z_val if Z_val is not None and len(Z_val) >= MIN_HELD_OUT else Z_train

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> ReconstructionDetector:
        """Fit on ``X`` (assumed mostly normal). ``y`` is ignored (unsupervised, as in PyOD)."""
        self._check_params()
        rule = parse_threshold(self.threshold, self.contamination)
        Z = self._fit_adapter(X)
        self._notice_heavy_tails()
        train_idx, val_idx = self._split(len(Z))
        Z_train, Z_val = Z[train_idx], (Z[val_idx] if len(val_idx) else None)
        self.weighting_ = self._weighting()

        self.models_: list[AutoEncoder] = []
        self.feature_weights_: list[torch.Tensor] = []
        self.latent_stats_: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.latent_mixtures_: list[CodeMixture | None] = []
        trim = float(getattr(self, "trim", 0.0))  # AnomalyDetector's; the other detectors train on every row
        self.training_history_: list[list[dict[str, float]]] = []
        for k in range(self.n_estimators):
            seed = self.random_state + k
            torch.manual_seed(seed)
            model = self._build_model(tuple(Z.shape[1:]))
            result = self._train(TrimmedObjective(model, trim) if trim else model, Z_train, Z_val, seed=seed,
                                 name=f"member{k}", desc=f"autoencoder {k + 1}/{self.n_estimators}")
            self.models_.append(model)
            self.training_history_.append(result.history)
            ref = self._unit_rows(Z_train, Z_val)
            codes = self._codes(model, Z_train)
            weights, (mean, precision) = self._feature_weights(model, ref), self._latent_stats(codes)
            mixture = fit_code_mixture(codes, seed) if self._mixes_codes() else None
            if self._median_units():
                weights, precision = self._in_median_units(model, ref, weights, mean, precision, mixture)
            self.feature_weights_.append(weights)
            self.latent_stats_.append((mean, precision))
            self.latent_mixtures_.append(mixture)

        self.local_weight_ = self._local_weight()
        self.local_groups_ = 1  # one group of references unless the tables' local term deals them out
        self.local_centres_: torch.Tensor | None = None  # the tables' local term's cells (local_cells)
        self.local_probes_ = 1  # cells searched per row
        self.local_nearest_scale_: float | None = None  # the nearest row's unit, where the term reads it
        self._reference_rows: torch.Tensor | None = None
        self.local_references_, self.local_scale_ = (self._fit_local(Z_train, Z_val) if self.local_weight_
                                                     else (None, 1.0))
        self.histogram_weight_ = self._histogram_weight()
        self.histograms_ = self._fit_histograms(Z_train, Z_val) if self.histogram_weight_ else None
        self.decision_scores_, clean = self._training_scores(Z, val_idx, train_idx)
        rule, clean = self._fpr_read(self._where_read(rule, len(val_idx)), clean, len(val_idx))
        self.threshold_rule_ = self._spanned(rule, clean)
        self.threshold_ = resolve_threshold(self.threshold_rule_, self.decision_scores_, clean)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _notice_heavy_tails(self) -> None:
        """A note naming the number columns with a heavy right tail (``heavy_tailed_``): their
        large values are far from every other row in robust units, so they score as anomalies.
        Log-transforming every such column by default was measured and refused: it cost 0.11
        AUC-ROC on a development set whose anomalies lie in that tail (BENCHMARKS.md), and it
        helps where the tail is normal (a lognormal amount unrelated to the anomalies, 0.939 ->
        0.995). Only the user knows which; the note says how."""
        heavy = getattr(getattr(self.adapter_, "preprocessor", None), "heavy_tailed_", None)
        if heavy:
            warnings.warn(f"column(s) {some_columns(heavy)} have a heavy right tail (99th percentile over 10 IQRs "
                          "above the median): their large values score as anomalies; where such values are normal, "
                          f"log-transform the columns: log_columns={heavy[:5]} "
                          f"(--log-columns {shlex.quote(','.join(heavy[:5]))})", DataNotice, stacklevel=3)

    def _training_scores(self, Z: torch.Tensor, val_idx: np.ndarray, train_idx: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """The training samples' scores (``decision_scores_``) and the held-out ones' (the clean
        scores an ``fpr:`` threshold reads; every sample's when none was held out).

        Every training row of a table (and every training image, up to the references' cap)
        is one of the local term's references, which would find itself; scored
        leave-one-out, as PyOD's kNN scores its training rows, a ``contamination`` threshold
        flags about its share of new normal rows (0.05 flagged 5.7-7.3% of the unseen normal
        rows of 4 development sets with the row itself counted, 5.3-5.7% without; 5.4-6.4%
        with 1,024 references before the cells)."""
        if self._reference_rows is None:
            scores = self._score_blocks(Z, per_feature=False)[0]
        else:
            scores = self._score_blocks(Z, per_feature=False, local=False)[0]
            own = (torch.arange(len(Z)), torch.from_numpy(train_idx)[self._reference_rows])
            with torch.inference_mode():
                scores += self._local_leaving_out(Z, own).double().numpy() * self.local_weight_
            self._reference_rows = None
        return scores, (scores[val_idx] if len(val_idx) else scores)

    def _where_read(self, rule: ThresholdRule, held_out: int) -> ThresholdRule:
        """``rule``, reading a contamination quantile on the held-out samples' scores where
        the detector's training scores run low (``_contamination_held_out``) and at least
        ``MIN_HELD_OUT`` samples were held out."""
        if rule.method != "contamination" or not self._contamination_held_out:
            return rule
        if held_out < MIN_HELD_OUT:
            unit = "images" if self.adapter_.kind == "image" else "samples"
            warnings.warn(f"{held_out} training {unit} were held out, fewer than {MIN_HELD_OUT}: the contamination "
                          f"threshold reads the training {unit}' scores, which run low, so new normal {unit} will be "
                          f"flagged more often than {rule.value:g} of the time: train on more of them, or give the "
                          "threshold as a score (threshold=, --threshold)", DataNotice, stacklevel=3)
            return rule
        return dataclasses.replace(rule, held_out=True)

    def _fpr_read(self, rule: ThresholdRule, held: np.ndarray, held_out: int) -> tuple[ThresholdRule, np.ndarray]:
        """``(rule, scores)``: what an ``fpr:`` rule reads (``ThresholdRule.reads``): the
        ``held`` out samples' scores, or with ``_fpr_reads_training`` every training sample's
        (tables: theirs scored leave-one-out flag new normal rows as held-out ones do, and 15%
        held out are few: fpr:0.05 flagged 5.2% instead of 7.5% of the held-out development
        sets' new normal rows, BENCHMARKS.md); every sample's where none was held out."""
        if rule.method != "fpr":
            return rule, held
        if not held_out:
            return dataclasses.replace(rule, reads="training"), held
        if self._fpr_reads_training:
            return dataclasses.replace(rule, reads="held-out and training"), self.decision_scores_
        return rule, held

    def _spanned(self, rule: ThresholdRule, clean: np.ndarray) -> ThresholdRule:
        """``rule`` with the rows that score alike (``ThresholdRule.span``), for the ``clean``
        scores it reads: samples are independent here; a series detector's rows share windows."""
        return rule

    def _local_leaving_out(self, Z: torch.Tensor, own: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The local term of rows ``Z`` before ``local_weight_``, each row compared without
        the references of its own id (``own = (row_ids, reference_ids)``, as
        ``CellSearch.nearest`` takes them)."""
        local = self._local_search(self.local_references_).nearest(Z, with_index=False, own=own)[0]
        return self._local_distance(local)

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.n_estimators, "n_estimators", 1, MAX_ESTIMATORS)
        check_choice(self.feature_weighting, "feature_weighting", FEATURE_WEIGHTINGS)
        check_float(self.latent_weight, "latent_weight", 0)
        check_float(getattr(self, "trim", 0.0), "trim", 0, 0.5)
        if self.local_weight != "auto":
            check_float(self.local_weight, "local_weight", 0)
        if getattr(self, "histogram_weight", "auto") != "auto":  # AnomalyDetector's
            check_float(self.histogram_weight, "histogram_weight", 0)
        check_int(self.patience, "patience", 1)
        check_float(self.weight_decay, "weight_decay", 0)
        parse_threshold(self.threshold, self.contamination)

    def _weighting(self) -> str:
        """``feature_weighting="auto"``: ``relative`` for images, ``standardize`` otherwise."""
        if self.feature_weighting != "auto":
            return self.feature_weighting
        return "relative" if self.adapter_.kind == "image" else "standardize"

    def _median_units(self) -> bool:
        """Whether each term's unit is its median on held-out rows, not its mean: for tables.

        Why: the held-out rows come from the training rows, and when those hold anomalies
        their large terms inflate a mean unit most in the terms that see them best, which
        then count for less. A median stays the typical normal row's (contaminated
        development sets, A: 0.806 -> 0.821 AUC-ROC; clean sets unchanged; BENCHMARKS.md,
        issue 33). Images keep the mean units their benchmarks were measured with."""
        return self.adapter_.kind != "image" and self.weighting_ != "none"

    @torch.inference_mode()
    def _in_median_units(self, model: AutoEncoder, Z: torch.Tensor, weights: torch.Tensor, mean: torch.Tensor,
                         precision: torch.Tensor, mixture: CodeMixture | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """``weights`` and ``precision`` rescaled so that the reconstruction and code terms of
        the rows ``Z`` have a median of 1 (the code term before ``latent_weight``). With a
        ``mixture``, it is first located on the same rows' codes (its own median 1); the code
        term is then the larger of the two, and both are rescaled (the mixture in place) so
        that the larger has a median of 1."""
        errors, code = self._reconstruction_errors(model, Z)
        rec = errors.flatten(1) @ weights.flatten()
        diff = code - mean
        latent = ((diff @ precision) * diff).sum(1) / len(mean)
        latent_unit = _unit(latent)
        precision = precision / latent_unit
        if mixture is not None:
            mixture.locate(code, _unit)
            common = _unit(torch.maximum(latent / latent_unit, mixture.term(code)))
            precision, mixture.scale = precision / common, mixture.scale / common
        return weights / _unit(rec), precision

    def _mixes_codes(self) -> bool:
        """Whether the code term also reads a Gaussian mixture of the codes (``code_mixture``):
        for tables, in median units, with a code term. Images keep their measured score."""
        return bool(self.latent_weight) and self.adapter_.kind == "table" and self._median_units()

    def _local_weight(self) -> float:
        """``local_weight="auto"``: ``DEFAULT_LOCAL_WEIGHT`` for tables and arrays, 0 for
        images (it was chosen on tables and has not been measured on images)."""
        if self.local_weight != "auto":
            return float(self.local_weight)
        return 0.0 if self.adapter_.kind == "image" else DEFAULT_LOCAL_WEIGHT

    def _fit_local(self, Z_train: torch.Tensor, Z_val: torch.Tensor | None) -> tuple[torch.Tensor, float]:
        """The reference rows (the training rows, a random subset of very large sets, in
        cells: ``local_cells``) and the median local distance of held-out normal rows (the
        unit of the local term).

        Why a local term: the reconstruction and code terms are global; a row that falls
        between two clusters of normal data can be rebuilt well and have a common code, yet
        no normal row is near it (LOF's case: a synthetic between-clusters set, 0.96 -> 1.00
        AUC). Why groups of rows, not the nearest of k-means centres as before issue 33:
        when the training rows hold anomalies, k-means gives them centres of their own and
        the term forgets them, while the nearest row of each of 5 random groups is, like the
        5 nearest neighbours, far from a row unless several training rows are near it
        (contaminated development sets, A / B: 0.786 / 0.734 -> 0.798 / 0.755 AUC-ROC).
        Tables now read 20 groups, and the nearest row too (``_local_distance``).
        Why every training row, not 1,024 of them: see ``local_cells``."""
        flat = Z_train.flatten(1)
        rng = np.random.default_rng(self.random_state)
        n_refs = local_cells.reference_rows(len(flat), flat.shape[1])
        kept = torch.from_numpy(np.sort(rng.permutation(len(flat))[:n_refs]))
        chosen = flat[kept]
        # at least 2 rows per group, so that a training row scored without itself (leave-one-out)
        # has another row in each group: with 20 groups, tables of fewer than 40 references
        self.local_groups_ = min(NEAREST_GROUPS if self._local_nearest() else LOCAL_GROUPS, max(1, n_refs // 2))
        references, centres, sources = local_cells.build_cells(
            chosen, self.local_groups_, local_cells.cell_count(n_refs), rng)
        self._reference_rows = kept[sources]  # the row of Z_train in each reference slot (for fit only)
        self.local_centres_ = centres if len(centres) > 1 else None  # one cell: searched about its mean
        self.local_probes_ = min(local_cells.PROBES, len(centres))
        ref = self._unit_rows(Z_train, Z_val)
        distances = self._local_search(references).nearest(ref, with_index=False)[0]
        # a floor for data whose held-out rows sit on the references (duplicated rows): a
        # tiny unit would turn any small distance into an enormous score
        floor = 1e-3 * float(flat.var(0).sum()) + 1e-9
        mean = distances.mean(1)
        typical = max(float(_unit(mean)) if self._median_units() else float(mean.mean()), floor)
        if self._local_nearest():
            # each statistic in its median unit, then both rescaled so that the larger of the
            # two has a median of 1, as every term has (the code term's two measures alike)
            smallest = distances.amin(1)
            nearest = max(float(_unit(smallest)), floor)
            common = float(_unit(torch.maximum(mean / typical, smallest / nearest)))
            # a floor again: where most held-out rows sit on references (a table of repeated
            # rows), that median and so the rescaled units were about 0 (3.5e-10 for 20
            # patterns repeated), and a normal row scored tens of thousands from its distances'
            # rounding, or from a group that lacked its pattern. Both floors lie below every
            # development set's units (their scores are the same, bit for bit)
            low = max(RESOLUTION_SHARE * _resolution(distances, ref.flatten(1)), 0.1 * floor)
            self.local_nearest_scale_, typical = max(nearest * common, low), max(typical * common, low)
        return references, typical

    def _local_nearest(self) -> bool:
        """Whether the local term is the larger of the nearest row and the groups' mean
        (``_local_distance``): for tables, in median units. Series windows keep the mean of 5
        groups their benchmark (NAB) was measured with."""
        return self.adapter_.kind == "table" and self._median_units()

    def _local_distance(self, distances: torch.Tensor) -> torch.Tensor:
        """The local term before ``local_weight_``, from ``[rows, groups]`` squared distances
        to each group's nearest reference: their mean in its held-out median unit, or, where
        the model has a ``local_nearest_scale_``, the larger of that and the smallest (the
        nearest row) in its own.

        Why both (issue 33): the nearest row is the sharpest statistic on clean training rows
        (kNN's with k = 1), but anomalies among the training rows are each other's nearest
        rows; the mean over 20 groups is a broader scale (about the 20th nearest row) that a
        few such anomalies cannot hide in. The default with the larger of the two, against
        the mean of 5 groups (development sets, A / B / synthetic / digits, 2 seeds): clean
        0.901 / 0.826 / 0.979 / 0.913 -> 0.903 / 0.829 / 0.977 / 0.927, contaminated 0.823 /
        0.756 / 0.973 / 0.685 -> 0.833 / 0.755 / 0.970 / 0.681 (BENCHMARKS.md, issue 33)."""
        mean = distances.mean(1).div_(self.local_scale_)
        if self.local_nearest_scale_ is None:
            return mean
        return torch.maximum(mean, distances.amin(1).div_(self.local_nearest_scale_))

    def _local_search(self, references: torch.Tensor) -> local_cells.CellSearch:
        """The search over ``references`` (made once per reference tensor and kept)."""
        cached = getattr(self, "_cell_search", None)
        if cached is None or cached[0] is not references:
            centres = self.local_centres_ if self.local_centres_ is not None else references.mean(0, keepdim=True)
            cached = (references, local_cells.CellSearch(references, centres, self.local_groups_, self.local_probes_))
            self._cell_search = cached
        return cached[1]

    def _histogram_weight(self) -> float:
        """``histogram_weight="auto"``: ``DEFAULT_HISTOGRAM_WEIGHT`` for tables in median units,
        0 for images and series windows (measured on tables only). Detectors without the
        parameter have no histogram term."""
        weight = getattr(self, "histogram_weight", 0.0)  # AnomalyDetector's
        if weight != "auto":
            return float(weight)
        return DEFAULT_HISTOGRAM_WEIGHT if self._local_nearest() else 0.0

    def _fit_histograms(self, Z_train: torch.Tensor, Z_val: torch.Tensor | None) -> ColumnHistograms:
        """Each column's histogram of the training rows, its unit from the held-out rows
        (``histograms``: why the term, and what it is)."""
        histograms = fit_histograms(Z_train.flatten(1).numpy())
        ref = self._unit_rows(Z_train, Z_val)
        histograms.locate(ref.flatten(1).numpy())
        return histograms

    def _histogram_term(self, Z: torch.Tensor, per_feature: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``histogram_weight_`` times the histogram term: row totals and (if
        ``per_feature``) each column's share, in torch operations only (the ONNX export
        traces them); ``ColumnHistograms`` computes the same in numpy."""
        h = self.histograms_
        cached = getattr(self, "_histogram_tensors", None)  # made once per fitted or loaded histograms
        if cached is None or cached[0] is not h:
            offsets = torch.arange(h.width, dtype=torch.int32) * h.table.shape[1]
            cached = (h, torch.from_numpy(h.scale), torch.from_numpy(h.shift), torch.from_numpy(h.table).flatten(),
                      offsets)
            self._histogram_tensors = cached
        _, scale, shift, table, offsets = cached
        flat = Z.flatten(1)
        cells = (flat * scale + shift).clamp_(0, h.table.shape[1] - 1).int().add_(offsets)  # int(): the floor, once >= 0
        # index_select with int32 cells: 0.06-0.09 s per million rows of 30 (one thread), against
        # 0.16-0.20 s with int64 cells and 0.35 s for table[cells]
        rarity = table.index_select(0, cells.view(-1)).view_as(cells)
        total = rarity.sum(1)
        term = (total - h.median).clamp_min_(0).mul_(self.histogram_weight_ / h.unit)
        if not per_feature:
            return term, None
        return term, (rarity * (term / total.clamp_min(1e-30)).unsqueeze(1)).view_as(Z)

    def _local_term(self, Z: torch.Tensor, per_feature: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``local_weight_`` times the local distance: row totals and (if ``per_feature``) the
        per-feature parts, which sum to them. With the nearest row in the term, the parts are
        the squared differences to the nearest reference, scaled to the term (a row equal to
        its nearest reference shares the term evenly); before, the squared differences to the
        nearest reference of each group, averaged over the groups (exact, where the search's
        product form loses digits far from the origin; group by group, so memory stays
        [rows x features])."""
        distances, index = self._local_search(self.local_references_).nearest(Z, with_index=per_feature)
        if index is None:
            return self._local_distance(distances).mul_(self.local_weight_), None
        flat, references = Z.flatten(1), self.local_references_
        if self.local_nearest_scale_ is not None:
            term = self._local_distance(distances).mul_(self.local_weight_).unsqueeze(1)
            nearest = index.gather(1, distances.argmin(1, keepdim=True)).squeeze(1)
            parts = (flat - references[nearest]).pow_(2)
            total = parts.sum(1, keepdim=True)
            parts = torch.where(total > 0, parts * (term / total.clamp_min(1e-30)), term / flat.shape[1])
            return parts.sum(1), parts.view_as(Z)
        scale = self.local_weight_ / self.local_scale_
        parts = (flat - references[index[:, 0]]).pow_(2)
        for g in range(1, index.shape[1]):
            parts.add_((flat - references[index[:, g]]).pow_(2))
        parts.mul_(scale / index.shape[1])
        return parts.sum(1), parts.view_as(Z)

    @torch.inference_mode()
    def _feature_weights(self, model: AutoEncoder, Z: torch.Tensor) -> torch.Tensor:
        """How each feature's squared error counts in the score, from held-out normal rows.

        ``standardize``: 1 / (that feature's typical error), so each feature (column, or
        pixel) counts by its usual difficulty; ``global``: 1 / (the typical error over all
        features), plain mean squared error in units of its normal level; ``relative``: the
        same for the error divided by the sample's own variance (``_sample_scale``), so a
        flat image must be rebuilt as closely, relative to its contrast, as a detailed one;
        ``none``: plain mean squared error. All but ``none`` make the term about 1 for
        normal rows, on the same scale as the latent term."""
        d = Z[0].numel()
        if self.weighting_ == "none":
            return torch.full(Z.shape[1:], 1.0 / d)
        errors = self._reconstruction_errors(model, Z)[0]
        if self.weighting_ == "relative":
            typical = float((errors.flatten(1).mean(1) / self._sample_scale(Z)).mean())
            return torch.full(Z.shape[1:], 1.0 / (typical + 1e-12) / d)
        mse = errors.mean(0)
        if self.weighting_ == "global":
            return torch.full(Z.shape[1:], 1.0 / (float(mse.mean()) + 1e-12) / d)
        columns = self._feature_columns()
        if columns is not None and len(set(columns)) < len(columns):
            return self._column_weights(mse, columns)
        # A floor keeps features that are reconstructed perfectly (e.g. constant in training)
        # from turning any tiny deviation into an enormous score.
        floor = 0.05 * float(mse.mean()) + 1e-6
        return 1.0 / (torch.clamp(mse, min=floor) * d)

    def _feature_columns(self) -> list[str] | None:
        """For a table, the training column of each input feature (a categorical column's
        one-hot features share it); None for other data."""
        preprocessor = getattr(self.adapter_, "preprocessor", None)
        return None if preprocessor is None else preprocessor.feature_groups_

    @staticmethod
    def _column_weights(mse: torch.Tensor, columns: list[str]) -> torch.Tensor:
        """``standardize`` by training column: a categorical column's one-hot features share
        one weight, 1 / (the typical sum of their errors), and every column counts once.
        Weighted one by one, each category's weight was the inverse of its own tiny error, so
        a row of a rare category scored as an anomaly, and a column of many categories
        outweighed the number columns: beside an unrelated column of 500 categories, a
        detector's AUC-ROC on anomalies in 8 number columns was 0.864 (0.996 now, and 0.997
        without that column; ``benchmarks/anomaly_table_shapes.py``). Number columns are
        weighted as before."""
        names = list(dict.fromkeys(columns))
        index = torch.tensor([names.index(c) for c in columns])
        per_column = torch.zeros(len(names), dtype=mse.dtype).index_add_(0, index, mse)
        floor = 0.05 * float(per_column.mean()) + 1e-6
        return (1.0 / (torch.clamp(per_column, min=floor) * len(names)))[index]

    @torch.inference_mode()
    def _codes(self, model: AutoEncoder, Z: torch.Tensor) -> torch.Tensor:
        """The codes of ``Z``, in scoring blocks (the Gaussian and the mixture read the same ones)."""
        return self._batched(model.encode, Z, self._score_block)

    @staticmethod
    def _latent_stats(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (Ledoit-Wolf shrunk) precision of the training codes."""
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(codes.double().numpy())
        return torch.from_numpy(lw.location_).float(), torch.from_numpy(lw.precision_).float()

    def _sample_scale(self, Z: torch.Tensor) -> torch.Tensor:
        """Per-sample divisor of the squared errors under ``feature_weighting="relative"``:
        the sample's variance across its features plus ``VARIANCE_FLOOR``.

        Why: a detector trained on detailed images (faces) rebuilds a smooth image (sky, a
        wall) with a small absolute error, so plain error ranks such anomalies as very normal;
        relative to their own small contrast the same error is large (faces vs non-faces
        AUC 0.82 -> 0.95 alone, 0.997 with the latent term; benchmarks/anomaly_images.py)."""
        return Z.flatten(1).var(1, unbiased=False).add_(VARIANCE_FLOOR)

    # ------------------------------------------------------------------ scoring
    def copy_for_a_thread(self) -> ReconstructionDetector:
        """A copy that scores on its calling thread beside others (``light.write_table_scores``
        runs one per core, each on one torch thread): the networks and every array are
        shared; the adapter, whose table preprocessor counts each call's unseen categories,
        is its own. The local search is made first, so that the copies share it."""
        self._check_fitted()
        if getattr(self, "local_references_", None) is not None:
            self._local_search(self.local_references_)
        mine = copy.copy(self)
        mine.adapter_ = copy.copy(self.adapter_)
        if hasattr(mine.adapter_, "preprocessor"):
            mine.adapter_.preprocessor = copy.copy(self.adapter_.preprocessor)
        return mine

    def _reconstruction_errors(self, model: AutoEncoder, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared reconstruction errors (the shape of ``Z``) and the codes."""
        code = model.encode(Z)
        return model.decode(code).sub_(Z).pow_(2), code

    def _member_extra(self, k: int, Z: torch.Tensor, code: torch.Tensor) -> torch.Tensor | None:
        """Score terms of member ``k`` not attributable to single features: ``latent_weight``
        times the squared Mahalanobis distance of the code to the training codes, over the
        code size (about 1 for normal rows), or the code mixture's term where that is larger
        (tables). It catches rows that reconstruct well but whose code lies where normal codes
        are rare: extreme values along the normal manifold, and (the mixture) gaps between
        groups of normal codes."""
        if not self.latent_weight:
            return None
        mean, precision = self.latent_stats_[k]
        diff = code - mean
        gaussian = ((diff @ precision) * diff).sum(1).div_(len(mean))
        mixture = self.latent_mixtures_[k]
        if mixture is not None:  # the stricter of the two (code_mixture's docstring)
            gaussian = torch.maximum(gaussian, mixture.term(code))
        return gaussian.mul_(self.latent_weight)

    @torch.inference_mode()
    def _score_blocks(self, Z: torch.Tensor | SpanRows, per_feature: bool, local: bool = True
                      ) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores of every row, and (if ``per_feature``) the weighted per-feature errors whose
        sums are the reconstruction part of the score; ensemble means, in one pass. Without
        ``local``, the scores leave the local term out. ``Z`` may be ``SpanRows``: each
        thread then transforms the spans it scores."""
        scores = np.empty(len(Z), dtype=np.float64)
        contrib = np.empty(Z.shape, dtype=np.float64) if per_feature else None

        def score(start: int, stop: int) -> None:
            block = Z[start:stop]
            acc = torch.zeros_like(block) if per_feature else None
            scores[start:stop] = self._block_scores(block, acc, local).numpy()
            if acc is not None:
                contrib[start:stop] = acc.numpy()

        row_values = max(1, math.prod(Z.shape[1:]))
        for_each_span(score, len(Z), max(self._score_block, min(4 * self._score_block, SCORE_VALUES // row_values)))
        return scores, contrib

    def _block_scores(self, block: torch.Tensor, acc: torch.Tensor | None = None, local: bool = True) -> torch.Tensor:
        """The scores of one block of rows, in torch operations only (``export_onnx`` traces
        it). With ``acc`` (zeros shaped like ``block``), the per-feature parts of the score
        (ensemble mean of the weighted errors, plus the local term) are added into it."""
        n_models = len(self.models_)
        total: torch.Tensor | None = None
        inv_scale = (self._sample_scale(block).reciprocal_().view(-1, *([1] * (block.dim() - 1)))
                     if self.weighting_ == "relative" else None)
        for k, (model, weights) in enumerate(zip(self.models_, self.feature_weights_, strict=True)):
            errors, code = self._reconstruction_errors(model, block)
            if inv_scale is not None:
                errors = errors * inv_scale
            if acc is not None:
                weighted = errors * weights
                acc.add_(weighted, alpha=1.0 / n_models)
                part = weighted.flatten(1).sum(1)
            else:  # row sums only: one matrix-vector product instead of a weighted copy
                part = errors.flatten(1) @ weights.flatten()
            member_extra = self._member_extra(k, block, code)
            if member_extra is not None:
                part = part + member_extra
            total = part if total is None else total + part
        total = total / n_models
        if local and self.local_references_ is not None:
            term, local_parts = self._local_term(block, acc is not None)
            total = total + term
            if acc is not None:
                acc.add_(local_parts)
        if getattr(self, "histograms_", None) is not None:
            term, histogram_parts = self._histogram_term(block, acc is not None)
            total = total + term
            if acc is not None:
                acc.add_(histogram_parts)
        return total

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each row: higher = more anomalous (PyOD's convention)."""
        self._check_fitted()
        return self._score_blocks(self.adapter_.transform_by_spans(X), per_feature=False)[0]

    def score_samples(self, X: Any) -> np.ndarray:
        """Same as ``decision_function`` (higher = more anomalous; note that scikit-learn's
        own outlier detectors use the opposite sign for this name)."""
        return self.decision_function(X)

    def predict(self, X: Any, return_confidence: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """1 for anomalies (score above ``threshold_``), 0 for normal rows; with
        ``return_confidence``, also how sure each label is (``predict_confidence``), as PyOD
        returns them."""
        scores = self.decision_function(X)
        labels = (scores > self.threshold_).astype(int)
        return (labels, self._confidence(scores)) if return_confidence else labels

    def predict_confidence(self, X: Any) -> np.ndarray:
        """How sure each row's ``predict`` label is, in [0, 1] (PyOD's ``predict_confidence``:
        ExCeeD, Perini et al. 2020). A row's chance ``p`` of scoring above a row like the
        training rows is estimated from where its score falls among their n scores. The
        confidence that it is an anomaly is then the chance that, of n such rows, more than
        the n - t that the threshold leaves normal score below it (``t``: training rows
        above ``threshold_``); for a row labelled normal, one less that chance. PyOD takes
        ``t = int(n * contamination)``; here it is counted, so that any threshold rule
        works. NaN where the score is NaN (a series too short to score)."""
        return self._confidence(self.decision_function(X))

    def _confidence(self, scores: np.ndarray) -> np.ndarray:
        from scipy.stats import binom  # here only: scipy would add 0.2 s to every scoring command's start

        train = np.sort(self.decision_scores_[np.isfinite(self.decision_scores_)])
        n = len(train)
        at_or_below = np.searchsorted(train, scores, side="right")
        chance = (1 + at_or_below) / (2 + n)  # of scoring above a training row, with a uniform prior
        normal_in_training = n - int((train > self.threshold_).sum())
        confidence = 1 - binom.cdf(normal_in_training, n, chance)
        confidence = np.where(scores > self.threshold_, confidence, 1 - confidence)
        return np.where(np.isnan(scores), np.nan, confidence)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    def predict_proba(self, X: Any, method: str = "linear", return_confidence: bool = False
                      ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """``[P(normal), P(anomaly)]`` per row, scaled against the training scores (with
        ``return_confidence``, also ``predict_confidence``'s values, as PyOD returns them).

        ``linear``: min-max against ``decision_scores_`` (PyOD's default);
        ``unify``: Gaussian scaling (Kriegel et al. 2011)."""
        s = self.decision_function(X)
        ref = self.decision_scores_[np.isfinite(self.decision_scores_)]  # a series too short to score: NaN
        if method == "linear":
            lo, hi = ref.min(), ref.max()
            p = np.clip((s - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        elif method == "unify":
            # torch's erf: scipy.special would add 0.2 s to every scoring command's start
            z = torch.from_numpy(np.asarray((s - ref.mean()) / (ref.std() * np.sqrt(2) + 1e-12), dtype=np.float64))
            p = np.clip(torch.special.erf(z).numpy(), 0, 1)
        else:
            raise ParameterError(f"method must be 'linear' or 'unify', got {method!r}")
        proba = np.column_stack([1 - p, p])
        return (proba, self._confidence(s)) if return_confidence else proba

    def set_threshold(self, threshold: str | float, X_clean: Any = None) -> ReconstructionDetector:
        """Re-threshold a fitted model: ``"fpr:R"`` on ``X_clean`` (known-clean rows), a
        contamination share on the training scores, or an explicit score."""
        self._check_fitted()
        rule = parse_threshold(threshold, self.contamination)
        if rule.method == "fpr" and X_clean is None:
            raise ParameterError("an 'fpr:' threshold needs X_clean, rows known to be normal")
        clean = self.decision_function(X_clean) if X_clean is not None else self.decision_scores_
        if rule.method == "fpr":
            rule = dataclasses.replace(rule, reads="given")
        if rule.method == "contamination" and self._contamination_held_out:  # the held-out samples' scores
            val_idx = self._split(len(self.decision_scores_))[1]
            rule = self._where_read(rule, len(val_idx))
            clean = self.decision_scores_[val_idx] if rule.held_out else clean
        rule = self._spanned(rule, clean)
        self.threshold_rule_, self.threshold_ = rule, resolve_threshold(rule, self.decision_scores_, clean)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    # ------------------------------------------------------------------ images
    @property
    def image_spec_(self) -> ImageSpec:
        """Channels and size every scored image is converted to (detectors of images)."""
        self._check_fitted()
        if self.adapter_.kind != "image":
            raise ParameterError(f"this detector was trained on {self.adapter_.describe()}, not images")
        return self.adapter_.spec

    def anomaly_map(self, X: Any) -> np.ndarray:
        """Per-pixel contributions to the score, ``[N, H, W]`` (channels summed), >= 0:
        where the reconstruction fails, relative to how well that pixel is usually rebuilt."""
        return self.score_maps(X)[1]

    def score_maps(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``decision_function(X)`` and ``anomaly_map(X)`` from one pass (images)."""
        spec = self.image_spec_
        scores, contrib = self._score_blocks(self._inputs(X), per_feature=True)
        return scores, contrib.reshape(len(scores), spec.channels, spec.height, spec.width).sum(1)

    # ------------------------------------------------------------------ persistence
    def _networks(self) -> dict[str, AutoEncoder]:
        return {f"member{k}": m for k, m in enumerate(self.models_)}

    def _files(self) -> dict[str, bytes]:
        """Image detectors save their score as an ONNX graph too (``export.score_graph_bytes``),
        which ``aekit anomaly score`` runs without importing torch."""
        if self.adapter_.kind != "image":
            return {}
        import warnings

        from .export import score_graph_bytes

        try:
            graph = score_graph_bytes(self)
        except Exception as exc:  # noqa: BLE001  (the model itself is still saved, and scored in torch)
            warnings.warn(f"the score graph was not exported ({exc.__class__.__name__}: {exc}); "
                          "'aekit anomaly score' will score this model in torch", RuntimeWarning, stacklevel=3)
            return {}
        return {SCORE_GRAPH_FILE: graph} if graph is not None else {}

    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        groups: TensorGroups = {"scores": {"decision_scores": torch.from_numpy(self.decision_scores_)}}
        for k, w in enumerate(self.feature_weights_):
            mean, precision = self.latent_stats_[k]
            groups[f"calibration{k}"] = {"feature_weights": w, "latent_mean": mean, "latent_precision": precision}
            if self.latent_mixtures_[k] is not None:
                groups[f"calibration{k}"].update(self.latent_mixtures_[k].tensors())
        local = {"weight": self.local_weight_, "scale": self.local_scale_, "groups": self.local_groups_}
        if self.local_nearest_scale_ is not None:
            local["nearest_scale"] = self.local_nearest_scale_
        if self.local_references_ is not None:
            groups["local"] = {"references": self.local_references_}
            if self.local_centres_ is not None:
                groups["local"]["centres"] = self.local_centres_
                local.update(cells=len(self.local_centres_), probes=self.local_probes_)
        state = {
            "weighting": self.weighting_,
            "local": local,
            "threshold": {"method": self.threshold_rule_.method, "value": self.threshold_rule_.value,
                          "threshold": self.threshold_, **({"held_out": True} if self.threshold_rule_.held_out else {}),
                          **({"span": self.threshold_rule_.span} if self.threshold_rule_.span > 1 else {}),
                          **({"reads": self.threshold_rule_.reads} if self.threshold_rule_.reads != "held-out" else {})},
            # a loaded model (re-thresholded, then saved) keeps the summary it was saved with
            "training": [{"epochs_run": len(h), "best_val_loss": min((r.get("val_loss", r["train_loss"]) for r in h),
                                                                     default=None)} for h in self.training_history_]
                        or getattr(self, "_saved_training", []),
        }
        histograms = getattr(self, "histograms_", None)
        if histograms is not None:
            state["histogram"] = {"weight": self.histogram_weight_, "median": histograms.median,
                                  "unit": histograms.unit}
            groups["histogram"] = {k: torch.from_numpy(v) for k, v in histograms.arrays().items()}
        return state, groups

    def _set_state(self, networks: dict[str, AutoEncoder], state: dict[str, Any], groups: TensorGroups) -> None:
        n = len(networks)
        if n < 1 or sorted(networks) != sorted(f"member{k}" for k in range(n)):
            raise ModelFileError("config.json: the detector's networks must be member0..memberK")
        self.models_ = [networks[f"member{k}"] for k in range(n)]
        for model in self.models_:  # models trained before 0.9.1 may hold some (nn.subnormal)
            flush_subnormal_(model)
        self.weighting_ = check_choice(state["weighting"], "weighting", WEIGHTINGS)
        self.feature_weights_, self.latent_stats_, self.latent_mixtures_ = [], [], []
        for k, model in enumerate(self.models_):
            cal = groups[f"calibration{k}"]
            weights, mean, precision = cal["feature_weights"], cal["latent_mean"], cal["latent_precision"]
            code = model.bottleneck.code_size
            if (tuple(weights.shape) != self._member_input_shape() or tuple(mean.shape) != (code,)
                    or tuple(precision.shape) != (code, code)):
                raise ModelFileError(f"the calibration of member {k} does not match its network")
            if not all(torch.isfinite(t).all() for t in (weights, mean, precision)) or (weights < 0).any():
                raise ModelFileError(f"the calibration of member {k} holds NaN, inf or negative weights")
            try:  # models saved before 0.7.0 have none
                mixture = CodeMixture.from_tensors(cal, code)
            except ValueError as exc:
                raise ModelFileError(f"member {k}: {exc}") from None
            self.feature_weights_.append(weights)
            self.latent_stats_.append((mean, precision))
            self.latent_mixtures_.append(mixture)
        self._set_local_state(state.get("local"), groups.get("local"))
        self._set_histogram_state(state.get("histogram"), groups.get("histogram"))
        self.training_history_ = []
        self._saved_training = state.get("training", [])
        self.decision_scores_ = groups["scores"]["decision_scores"].numpy()
        t = state["threshold"]
        self.threshold_rule_ = parse_threshold(t["value"] if t["method"] == "score" else f"{t['method']}:{t['value']}",
                                               self.contamination)
        if t.get("held_out", False) is not False:
            if t["held_out"] is not True or self.threshold_rule_.method != "contamination":
                raise ModelFileError(f"config.json: the threshold's held_out must be true for a contamination rule, "
                                     f"got {t['held_out']!r}")
            self.threshold_rule_ = dataclasses.replace(self.threshold_rule_, held_out=True)
        if "span" in t:  # an fpr bound over windows (series; 0.9.14 and later)
            span = t["span"]
            if isinstance(span, bool) or not isinstance(span, int) or span < 2 or self.threshold_rule_.method != "fpr":
                raise ModelFileError(f"config.json: the threshold's span must be an integer >= 2 of an fpr rule, "
                                     f"got {span!r}")
            self.threshold_rule_ = dataclasses.replace(self.threshold_rule_, span=span)
        if "reads" in t:  # what an fpr threshold read, where not the held-out scores (0.9.16 and later)
            if t["reads"] not in FPR_READS or self.threshold_rule_.method != "fpr":
                raise ModelFileError(f"config.json: the threshold's reads must be one of {sorted(FPR_READS)} of an fpr "
                                     f"rule, got {t['reads']!r}")
            self.threshold_rule_ = dataclasses.replace(self.threshold_rule_, reads=t["reads"])
        threshold = t["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
            raise ModelFileError(f"config.json: the threshold must be a finite number, got {threshold!r}")
        self.threshold_ = float(threshold)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)

    def _set_local_state(self, local: Any, tensors: dict[str, torch.Tensor] | None) -> None:
        """The local density term from a model directory (absent in models made before it;
        models made before issue 33 stored k-means centres, which score as one group; models
        made before its cells, one cell)."""
        self.local_weight_, self.local_references_, self.local_scale_, self.local_groups_ = 0.0, None, 1.0, 1
        self.local_centres_, self.local_probes_, self.local_nearest_scale_ = None, 1, None
        if local is None:
            return
        if not isinstance(local, dict):
            raise ModelFileError(f"config.json: the local term must be an object, got {local!r}")
        weight, scale, nearest_scale = local.get("weight"), local.get("scale"), local.get("nearest_scale")
        groups, cells, probes = local.get("groups", 1), local.get("cells", 1), local.get("probes", 1)
        for name, value in (("weight", weight), ("scale", scale)) + ((("nearest_scale", nearest_scale),)
                                                                     if "nearest_scale" in local else ()):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise ModelFileError(f"config.json: the local term's {name} must be a finite number >= 0, got {value!r}")
        for name, value in (("groups", groups), ("cells", cells), ("probes", probes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelFileError(f"config.json: the local term's {name} must be an integer >= 1, got {value!r}")
        if probes > cells:
            raise ModelFileError(f"config.json: the local term's probes must be an integer from 1 to {cells}, "
                                 f"got {probes}")
        if not weight:
            return
        tensors = tensors or {}
        # before issue 33 the references were k-means centres, stored as "centres"
        references = tensors["references"] if "references" in tensors else tensors.get("centres")
        width = self._local_width()
        if references is None or references.dim() != 2 or references.shape[1] != width or not len(references):
            raise ModelFileError("the local term's references are missing or do not match the data's width")
        if len(references) % (groups * cells):
            raise ModelFileError(f"the local term's {len(references)} references do not make {cells} cell(s) "
                                 f"of {groups} equal groups")
        centres = tensors.get("centres") if cells > 1 else None
        if cells > 1 and (centres is None or tuple(centres.shape) != (cells, width)):
            raise ModelFileError(f"the local term's centres are missing or are not {cells} x {width}")
        if not torch.isfinite(references).all() or (centres is not None and not torch.isfinite(centres).all()) \
                or not scale or nearest_scale == 0:
            raise ModelFileError("the local term's references, centres or scales hold NaN, inf or zero")
        self.local_weight_, self.local_references_, self.local_scale_ = float(weight), references.float(), float(scale)
        self.local_groups_ = groups
        self.local_centres_ = centres.float() if centres is not None else None
        self.local_probes_ = probes
        self.local_nearest_scale_ = float(nearest_scale) if nearest_scale is not None else None  # since 0.8.0

    def _set_histogram_state(self, settings: Any, tensors: dict[str, torch.Tensor] | None) -> None:
        """The histogram term from a model directory (absent in models made before 0.9.0,
        which score as they did)."""
        self.histogram_weight_, self.histograms_ = 0.0, None
        if settings is None:
            return
        if not isinstance(settings, dict):
            raise ModelFileError(f"config.json: the histogram term must be an object, got {settings!r}")
        weight = settings.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight < 0:
            raise ModelFileError(f"config.json: the histogram term's weight must be a finite number >= 0, got {weight!r}")
        try:
            histograms = ColumnHistograms.from_arrays({k: v.numpy() for k, v in (tensors or {}).items()},
                                                      self._local_width(), settings.get("median"), settings.get("unit"))
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
        if weight:
            self.histogram_weight_, self.histograms_ = float(weight), histograms

    def _member_input_shape(self) -> tuple[int, ...]:
        """The shape of one sample the members read (the adapter's sample, unless a subclass
        cuts samples of its own from the adapter's output, as the series detector's windows)."""
        return tuple(self.adapter_.sample_shape)

    def _local_width(self) -> int:
        """The width of the stored local references (the samples' width)."""
        return int(np.prod(self._member_input_shape()))


def _resolution(distances: torch.Tensor, rows: torch.Tensor) -> float:
    """The median of the squared distances ``[rows, groups]`` of ``rows`` to references
    that differ from them: above 1e-4 of the row's squared norm, a thousand times the
    product form's rounding, so that a repeat of a row is no distance; 0 where none differ."""
    differ = distances[distances > 1e-4 * rows.double().pow(2).sum(1, keepdim=True).float() + 1e-12]
    return float(differ.median()) if len(differ) else 0.0


def _unit(values: torch.Tensor) -> torch.Tensor:
    """The median of a term's values on held-out rows, as its unit; at least a thousandth of
    their mean (rows rebuilt perfectly would make a zero median) and never zero."""
    return torch.maximum(values.median(), 1e-3 * values.mean()).clamp_min(1e-12)
