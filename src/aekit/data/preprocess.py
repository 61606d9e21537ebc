"""A fitted tabular preprocessor, saved with the model as plain JSON.

Numeric columns: optional signed ``log1p`` (heavy-tailed amounts), then scaling: minus the
median, over the tighter of the IQR and the standard deviation in IQR units (1.349 std; 1
for a constant column). The IQR is the robust choice where a few extreme values inflate the
std; the std is tighter for columns of a few values (a pixel that is ink or paper), whose
IQR spans them all. Choosing per column: kNN on digit pixels 0.900 -> 0.938 AUC-ROC, the
ADBench development sets unchanged (benchmarks/anomaly_score_components.py, issue 33).
Categorical columns: one-hot over the categories seen in training; an unseen category at
score time encodes as all zeros and is counted in ``unseen_counts_``, never a crash. A column
of more than ``MAX_CATEGORIES`` categories keeps its most frequent ones, and every other
value, seen in training or not, shares one more feature, ``OTHER_CATEGORY`` (a merchant
column of 8,000 values made 8,000 features: 200,000 training rows ran out of 24 GB); beyond
four such columns, each keeps an equal share of ``CATEGORY_BUDGET`` (``categories_kept``:
six unrelated columns of 1,000 values swamped the number columns that held the anomalies,
AUC-ROC 0.954, and 0.991 so: ``benchmarks/anomaly_table_shapes.py``). A text
column that ``categorical="auto"`` finds with mostly different values (an ID, a time) is
refused: one-hot, it would be categories seen once each.

Columns are matched by name: extra columns are ignored, reordered ones are fine, missing ones
raise an error that names them.

Value range: a value beyond float32 (|x| > 3.4e38) is an error naming its column, never
silently inf or imputed. Scaled values are clipped to +-1e6 (a million scale units from the
median), so an extreme but finite value scores as extremely anomalous, not as inf or NaN.
"""
from __future__ import annotations

import re
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..checks import check_float
from ..errors import DataError, ModelFileError, ParameterError
from .tables import EMPTY_UNNAMED_NOTE, array_names, empty_unnamed

IMPUTE_CHOICES = (None, "median")
# a text column with a different value in more than this share of the training rows (and
# at least ID_MIN_ROWS of them) is an identifier or a time, not categories to learn
ID_SHARE = 0.5
ID_MIN_ROWS = 20
# a text column of at least this many values that are numbers once their separators, currency
# and percent signs are gone holds numbers written as text ('12%': 31 values became 31
# categories); fewer may be a code's few levels ('1,2', '$', ...)
FORMATTED_MIN_VALUES = 10
FORMATTED_SAMPLE = 1000  # distinct values that check reads
# categories one column keeps at most, the last of them standing for every other value (as
# scikit-learn's OneHotEncoder(max_categories=...) groups its infrequent ones)
MAX_CATEGORIES = 256
OTHER_CATEGORY = "(other)"
# categories of the columns of many (more than MIN_CATEGORIES) kept in all: each keeps an equal
# share, from MIN_CATEGORIES to MAX_CATEGORIES
CATEGORY_BUDGET = 1024
MIN_CATEGORIES = 64
UNSEEN_EXAMPLES = 3  # unseen values named per column (a format that differs: 1/0 for True/False, DE for Germany)
# a number column named as an ID is: "id", "customer_id", "Customer ID", "userId", "index", "row_num"
ID_WORD = r"(?:.*[_\s.-])?(?:id|ID|Id)|.*[a-z](?:ID|Id)"
ID_NAME = re.compile(ID_WORD + r"|(?i:index|row(?:_?(?:num|number|no))?)")
# a number column named as codes are (a store's ID, a zip code, a product code): with at most
# MAX_CATEGORIES whole numbers, probably codes, whose neighbours (store 1049 and 1050) are no
# closer than any two, and which read as categories only when named so (a note says which)
CODE_NAME = re.compile(ID_WORD + r"|(?i:(?:.*[_\s.-])?(?:code|zip|zip_?code|post_?code|postal_?code|plz|sku))"
                       r"|.*[a-z](?:Code|Zip|Sku)")
# a column named as labels are (case aside) that holds at most LABEL_VALUES values
LABEL_NAMES = frozenset({"label", "labels", "class", "target", "y", "outcome", "anomaly", "is_anomaly", "outlier",
                         "is_outlier", "fraud", "is_fraud", "attack", "attack_type", "diagnosis", "ground_truth"})
LABEL_VALUES = 10
# fewer training rows than this and than columns get a note (a wide table of more rows, as
# genes x samples, is a shape people score on purpose)
FEW_ROWS = 100
SCALINGS = ("robust", "standard")
SCALED_LIMIT = 1e6
NORMAL_IQR = 1.349  # the IQR of a normal distribution, in standard deviations
# a number column whose 99th percentile lies more than this many IQRs above its median (a
# normal column: 1.7; a lognormal one of sigma 2: 29) and that holds no negative value
HEAVY_TAIL = 10.0
# a number column that never decreases down the rows of a table of at least this many rows,
# through at least this many different values: a time or a counter, as a feature
ORDERED_ROWS = 50
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


@dataclass
class TabularPreprocessor:
    """Fit on training features; ``transform`` maps any table with those columns to float32.

    categorical: ``"auto"`` (non-numeric dtypes) or an explicit list of column names.
    log_columns: numeric columns to pass through ``sign(x) * log1p(|x|)`` before scaling.
    impute: ``None`` (NaN/inf raise an error naming the columns) or ``"median"``.
    scaling: ``"robust"`` (median and the tighter of IQR and std, above) or ``"standard"``
    (mean and standard deviation: distances between rows keep every column's share of the
    variance, which clustering needs; a column that is mostly one value, as an edge pixel,
    keeps its small weight instead of the huge one a tiny IQR gives its rare other values).
    clip: scaled values are limited to ``[-clip, clip]`` (scale units). The anomaly detector
    keeps the default (no practical limit: a far value is the anomaly it must see); clustering
    uses 3, so the rare values of a mostly-constant column cannot outweigh the others.

    ``heavy_tailed_`` (robust scaling): the number columns of no negative value whose 99th
    percentile lies more than ``HEAVY_TAIL`` IQRs above the median. Their large values are
    far from every row in IQR units; the anomaly detector's fit names them in a note.
    ``ordered_``: the number columns that never decrease down the training rows (of at least
    ``ORDERED_ROWS``, through as many values): a time or a counter, whose later values lie
    beyond the training range. ``label_like_``: the columns named as labels are
    (``LABEL_NAMES``) with at most ``LABEL_VALUES`` values. ``notes`` says what both mean;
    every model fitted on a table gives them as notes. None of the three is saved.
    """

    categorical: str | list[str] = "auto"
    log_columns: list[str] = field(default_factory=list)
    impute: str | None = None
    scaling: str = "robust"
    clip: float = SCALED_LIMIT
    na_values: list[str] = field(default_factory=list)  # text that marks a missing value ('?'), read as NaN
    # fitted state
    columns_: list[str] = field(default_factory=list)
    numeric_: list[str] = field(default_factory=list)
    categories_: dict[str, list[str]] = field(default_factory=dict)
    pooled_: list[str] = field(default_factory=list)  # columns whose last category is OTHER_CATEGORY
    center_: list[float] = field(default_factory=list)
    scale_: list[float] = field(default_factory=list)
    unseen_counts_: dict[str, int] = field(default_factory=dict)
    unseen_examples_: dict[str, list[str]] = field(default_factory=dict)  # a few of each call's; not saved
    heavy_tailed_: list[str] = field(default_factory=list)  # robust scaling's fit only; not saved
    ordered_: list[str] = field(default_factory=list)  # the fit's; not saved
    label_like_: list[str] = field(default_factory=list)  # the same
    code_like_: list[str] = field(default_factory=list)  # the same: number columns named as codes are
    constant_: list[str] = field(default_factory=list)  # the same
    blank_: list[str] = field(default_factory=list)  # the same: empty columns without a name, left out
    rows_: int = 0  # the same: the training rows

    def __post_init__(self) -> None:
        if not _str_list(self.na_values):
            raise ParameterError(f"na_values must be a list of strings, got {self.na_values!r}")
        if self.impute not in IMPUTE_CHOICES:
            raise ParameterError(f"impute must be one of {IMPUTE_CHOICES}, got {self.impute!r}")
        if self.scaling not in SCALINGS:
            raise ParameterError(f"scaling must be one of {list(SCALINGS)}, got {self.scaling!r}")
        check_float(self.clip, "clip", 0, SCALED_LIMIT, low_open=True)
        self.log_columns = list(self.log_columns or [])

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame) -> TabularPreprocessor:
        if len(df) == 0:
            raise DataError("cannot fit on an empty table")
        df = self._markers_as_missing(without_arrow_types(df))
        self.blank_ = empty_unnamed(df)
        if self.blank_:
            df = df.drop(columns=self.blank_)
        self.columns_, self.rows_ = list(df.columns), len(df)
        problems = _ColumnProblems()
        if self.categorical == "auto":
            cats = [c for c in df.columns if not _is_numeric(df[c])]
            for c in list(cats):
                # True/False: two categories, also with a gap (a Parquet file's nullable booleans, a
                # CSV's blank field: read as objects, they were numbers 0/1 and the gap a NaN)
                if pd.api.types.is_bool_dtype(df[c]) or pd.api.types.infer_dtype(df[c], skipna=True) == "boolean":
                    continue
                words, share = _non_numbers(df[c])
                # numbers with a few bad values, or with missing markers where the numbers are no
                # code's few levels ('2', '4', '?' stays three categories, as before)
                if share >= 0.9 or (share >= 0.5 and _marks_missing(words)
                                    and df[c].nunique() - words.nunique() >= FORMATTED_MIN_VALUES):
                    if not len(words):  # numbers stored as objects (a numpy object array, JSON): a number column
                        cats.remove(c)
                        continue
                    # a column of numbers with a few words in it is a user error, not a category
                    problems.add(str(non_number_error(df[c], c, other_fix="; fix the value, or name the column "
                                                                           "as categorical if it is one")))
                    continue
                problems.check(_check_text_feature, df[c], c)
        else:
            cats = list(self.categorical)
            missing = [c for c in cats if c not in df.columns]
            if missing:
                raise DataError(f"categorical columns not found: {missing}")
        self.numeric_ = [c for c in df.columns if c not in cats]
        for c in self.numeric_:
            problems.check(_check_number_feature, df[c], c)
        problems.raise_any()
        self.label_like_ = [c for c in df.columns if str(c).strip().lower() in LABEL_NAMES
                            and df[c].nunique() <= LABEL_VALUES]
        self.code_like_ = [c for c in self.numeric_ if _looks_like_codes(df[c], c)] if self.categorical == "auto" else []
        missing_log = [c for c in self.log_columns if c not in self.numeric_]
        if missing_log:
            raise DataError(f"log-transform columns not found among numeric columns: {missing_log}")
        self.categories_, self.pooled_ = {}, []
        counted = {c: category_text(df[c].dropna()).value_counts(sort=False).sort_index() for c in cats}
        most = categories_kept(sum(len(counts) > MIN_CATEGORIES for counts in counted.values()))
        for c, counts in counted.items():
            if len(counts) > most:  # the most frequent, ties in text order
                kept = counts.sort_values(ascending=False, kind="stable").index[:most - 1]
                self.categories_[c] = [*sorted(kept), OTHER_CATEGORY]
                self.pooled_.append(c)
            else:
                self.categories_[c] = counts.index.tolist()
        num = self._numeric_block(df, fit=True)
        std = np.array([])
        if num.shape[1]:  # a column of one value has no spread, though float32 sums may leave one (0.1: 1.5e-8)
            std = np.where(np.nanmax(num, axis=0) > np.nanmin(num, axis=0), np.nanstd(num, axis=0), 0.0)
        if self.scaling == "standard":
            center = np.nanmean(num, axis=0) if num.shape[1] else []
            scale = np.where(std > 0, std, 1.0)
        else:  # percentiles only here: a percentile pass over a large table is the slow part of fit
            q25, center, q75, q99 = (np.nanpercentile(num, [25, 50, 75, 99], axis=0) if num.shape[1]
                                     else ([], [], [], []))
            iqr = np.asarray(q75) - np.asarray(q25)
            heavy = (iqr > 0) & (np.asarray(q99) - np.asarray(center) > HEAVY_TAIL * iqr)
            if heavy.any():
                heavy &= np.nanmin(num, axis=0) >= 0
            self.heavy_tailed_ = [self.numeric_[j] for j in np.flatnonzero(heavy)]
            tight = np.minimum(iqr, NORMAL_IQR * std)
            scale = np.where(tight > 0, tight, np.where(std > 0, NORMAL_IQR * std, 1.0))
        self.center_, self.scale_ = [float(v) for v in center], [float(v) for v in scale]
        self.ordered_ = _ordered(num, self.numeric_)
        if num.shape[1] and not any(self.categories_.values()) and np.all(std == 0):
            raise DataError("every feature column is constant in the training data: there is nothing to learn")
        self.constant_ = [c for c, spread in zip(self.numeric_, std) if spread == 0]
        return self

    def notes(self) -> list[str]:
        """What the fit found in the training columns that a user likely did not mean: a
        label left among the features, categories pooled, a column of one value, fewer rows
        than columns, and a time or a counter kept as a feature."""
        found = []
        if self.blank_:
            found.append(f"column(s) {some_columns(self.blank_)} {EMPTY_UNNAMED_NOTE}")
        if self.label_like_:
            found.append(f"column(s) {some_columns(self.label_like_)} named like a label hold at most {LABEL_VALUES} "
                         "values: a label among the features hands the model the answer; if one is, drop it from X "
                         f"(--label-col {shlex.quote(self.label_like_[0])}, or --drop-cols)")
        if self.code_like_:
            listed = ",".join(map(str, [*self.categories_, *self.code_like_]))  # a list replaces "auto": all of them
            found.append(f"column(s) {some_columns(self.code_like_)} named like codes hold a few whole numbers: read as "
                         "numbers, codes that are close (store 1049 and 1050) count as alike; if they are codes, "
                         f"name them categorical (--categorical {shlex.quote(listed)})")
        if self.pooled_:
            kept = len(self.categories_[self.pooled_[0]])  # (every pooled column keeps as many)
            found.append(f"column(s) {some_columns(self.pooled_)} have more than {kept} categories: the "
                         f"{kept - 1} most frequent are kept, every other value shares one feature, "
                         f"{OTHER_CATEGORY!r}")
        if self.constant_:
            found.append(f"column(s) {some_columns(self.constant_)} hold one value in every training row: they teach "
                         "nothing, and another value there scores by its distance in the column's own units; leave "
                         f"them out (--drop-cols {shlex.quote(','.join(self.constant_[:5]))}) unless a change there is "
                         "what you look for")
        if self.rows_ < min(len(self.columns_), FEW_ROWS):
            found.append(f"{self.rows_} training rows for {len(self.columns_)} columns: with fewer rows than columns "
                         "most ways the rows can vary were never seen, and scores are rough; train on more rows")
        if self.ordered_:
            found.append(f"column(s) {some_columns(self.ordered_)} never decrease down the training rows (a time or "
                         "a counter?): rows of a later period will lie beyond their training values, far from every "
                         f"training row; leave them out (--drop-cols {shlex.quote(','.join(self.ordered_[:5]))}; "
                         "for an anomaly detector of a time series, give the time as --time-col)")
        return found

    # -- transforming -------------------------------------------------------------------------
    @property
    def feature_names_out_(self) -> list[str]:
        return list(self.numeric_) + [f"{c}={v}" for c, vals in self.categories_.items() for v in vals]

    @property
    def feature_groups_(self) -> list[str]:
        """For each output feature, the original column it came from (one-hot folds back)."""
        return list(self.numeric_) + [c for c, vals in self.categories_.items() for _ in vals]

    def check_columns(self, columns: Any) -> None:
        """Refuse a table that lacks any column the model was trained on (before any row is read,
        where a reader knows the columns first)."""
        if not self.columns_:
            raise DataError("the preprocessor is not fitted")
        missing = [c for c in self.columns_ if c not in columns]
        if missing:
            n = len(self.columns_)
            trained = f"{n} columns"
            if len(missing) == n == len(columns) and self.columns_ == array_names(n):  # a file for an array's model
                trained = (f"an array of {n} columns, which aekit names x0 to x{n - 1}: give the file that header, "
                           "in the training order, or train on a table with its column names")
            raise DataError(f"missing column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                            f"(the model was trained on {trained})")

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        self.check_columns(df.columns)
        if len(df) == 0:
            return np.zeros((0, len(self.feature_names_out_)), dtype=np.float32)
        df = self._markers_as_missing(without_arrow_types(df))
        numeric = self._scale(self._numeric_block(df, fit=False))
        self.unseen_counts_, self.unseen_examples_ = {}, {}
        if not self.categories_:
            return numeric
        # the one-hot blocks are written into the output beside the numbers, no block of each column
        # to concatenate (with _category_codes: 122 features, 0.97 -> 0.32 s per million rows)
        offset, rows = numeric.shape[1], np.arange(len(df))
        out = np.zeros((len(df), offset + sum(map(len, self.categories_.values()))), dtype=np.float32)
        out[:, :offset] = numeric
        for col, vals in self.categories_.items():
            codes = self._codes(df[col], col)
            seen = codes >= 0
            out[rows[seen], offset + codes[seen]] = 1.0
            self._note_unseen(df[col], col, seen, self.unseen_counts_, self.unseen_examples_)
            offset += len(vals)
        return out

    def count_unseen(self, df: pd.DataFrame) -> tuple[dict[str, int], dict[str, list[str]]]:
        """What ``transform`` would put in ``unseen_counts_`` and ``unseen_examples_`` for
        ``df``, without encoding it or changing this preprocessor (a Dask worker's pass over
        a partition's categorical columns)."""
        counts: dict[str, int] = {}
        examples: dict[str, list[str]] = {}
        if len(df) and self.categories_:
            df = self._markers_as_missing(without_arrow_types(df[list(self.categories_)]))
            for col in self.categories_:
                self._note_unseen(df[col], col, self._codes(df[col], col) >= 0, counts, examples)
        return counts, examples

    def _codes(self, column: pd.Series, col: str) -> np.ndarray:
        """Each value's position among ``col``'s categories; -1 for none (a missing value,
        or an unseen one where the column's rare values are not pooled)."""
        vals = self.categories_[col]
        codes = _category_codes(column, vals)
        if col in self.pooled_:  # every other value, seen in training or not
            codes[(codes < 0) & column.notna().to_numpy()] = len(vals) - 1
        return codes

    @staticmethod
    def _note_unseen(column: pd.Series, col: str, seen: np.ndarray, counts: dict[str, int],
                     examples: dict[str, list[str]]) -> None:
        unseen = ~seen & column.notna().to_numpy()  # missing values are not "unseen"
        if unseen.any():
            counts[col] = int(unseen.sum())
            examples[col] = [str(v) for v in pd.unique(column.to_numpy()[unseen])[:UNSEEN_EXAMPLES]]

    def _markers_as_missing(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` with the text of ``na_values`` (stripped) as missing values, in its text
        columns (a number column of a file holds no text)."""
        if not self.na_values:
            return df
        wanted, replaced = set(self.na_values), {}
        for c in df.columns:
            column = df[c]
            if column.dtype == object or pd.api.types.is_string_dtype(column):
                marked = column.notna() & column.astype(str).str.strip().isin(wanted)
                if marked.any():
                    replaced[c] = column.mask(marked)
        return df.assign(**replaced) if replaced else df

    def transform_array(self, arr: np.ndarray) -> np.ndarray:
        """Fast path for a numeric-only model fed a 2-D array whose columns are in training
        order: no pandas round trip (several times faster on millions of rows)."""
        if self.categories_:
            raise DataError("this model has categorical columns: pass a DataFrame with column names")
        if arr.ndim != 2 or arr.shape[1] != len(self.numeric_):
            if arr.ndim == 1:
                raise DataError(f"X is 1-D (shape {arr.shape}); pass rows as a 2-D array, e.g. X.reshape(1, -1) "
                                "for one row")
            raise DataError(f"X has shape {arr.shape}, the model was trained on {len(self.numeric_)} columns")
        if arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
            _check_float32_range(arr, self.numeric_)
        if arr.dtype.kind == "f" and not self.log_columns:
            scaled = self._scaled_if_finite(arr)
            if scaled is not None:
                return scaled
        try:
            num = np.array(arr, dtype=np.float32, order="C")  # a copy: the caller's array is not changed
        except (ValueError, TypeError):
            raise DataError("X holds non-numbers; pass a DataFrame to see which column") from None
        return self._scale(self._clean_numeric(num, fit=False))

    def _scaled_if_finite(self, arr: np.ndarray) -> np.ndarray | None:
        """``_scale(_clean_numeric(...))`` of float rows in four passes instead of seven (a
        million rows of 30: 0.071 -> 0.058 s): the subtraction writes the float32 copy, and
        one sum shows every value finite (a NaN or an infinity makes it not). None where the
        sum is not finite: the careful way then runs, and names the columns or imputes. The
        same numbers: the same float32 operations in the same order."""
        num = np.empty(arr.shape, dtype=np.float32)  # C order, whatever the caller's
        np.subtract(arr, np.asarray(self.center_, dtype=np.float32), out=num, dtype=np.float32)
        num /= np.asarray(self.scale_, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.isfinite(num.sum()):
                return None
        return np.clip(num, -self.clip, self.clip, out=num)

    def _scale(self, num: np.ndarray) -> np.ndarray:
        num -= np.asarray(self.center_, dtype=np.float32)
        num /= np.asarray(self.scale_, dtype=np.float32)
        return np.clip(num, -self.clip, self.clip, out=num)

    def _numeric_block(self, df: pd.DataFrame, fit: bool) -> np.ndarray:
        cols = self.numeric_
        if not cols:
            return np.zeros((len(df), 0), dtype=np.float32)
        sub = df if list(df.columns) == cols else df[cols]
        if all(dtype in FLOAT_DTYPES for dtype in sub.dtypes):
            # the usual table: float columns, every value finite and within float32, cast
            # straight to float32 (0.02 s per million rows of 30 against 0.08 by float64)
            with np.errstate(over="ignore"):
                narrow = sub.to_numpy(dtype=np.float32, copy=True)  # never a view of the caller's frame
            if narrow.size and -FLOAT32_MAX < narrow.min() and narrow.max() < FLOAT32_MAX:  # NaN fails too
                return self._clean_numeric(np.ascontiguousarray(narrow), fit, df.index)
        stored_as_objects = {}
        for c in cols:
            if not _is_numeric(sub[c]):
                values = pd.to_numeric(sub[c], errors="coerce")  # numbers stored as objects read as numbers
                if values.isna().sum() > sub[c].isna().sum():
                    raise non_number_error(sub[c], c)
                stored_as_objects[c] = values
        wide = (sub.assign(**stored_as_objects) if stored_as_objects else sub).to_numpy(dtype=np.float64)
        _check_float32_range(wide, cols)
        return self._clean_numeric(np.ascontiguousarray(wide, dtype=np.float32), fit, df.index)

    def _clean_numeric(self, arr: np.ndarray, fit: bool, index: pd.Index | None = None) -> np.ndarray:
        """NaN/inf check (or imputation) and the log transform, in place on a float32 copy;
        ``index``, the rows' labels, names the first row at fault."""
        cols = self.numeric_
        finite = np.isfinite(arr)
        all_finite = bool(finite.all())
        if not all_finite:
            if fit:  # a column with nothing to learn from, whatever the imputation: named first
                empty = [cols[j] for j in np.flatnonzero(~finite.any(axis=0))]
                if empty:
                    raise _no_values(empty)
            bad_cols = [cols[j] for j in np.flatnonzero(~finite.all(axis=0))]
            if self.impute is None:
                first = int(np.flatnonzero(~finite.all(axis=1))[0])
                guess = ("" if not np.isnan(arr[first]).any() else "; a value marked missing" if self.na_values
                         else "; an empty field, or a line cut short?")
                raise DataError(f"NaN or inf in column(s) {bad_cols[:10]} (the first in {_row_name(index, first)}"
                                f"{guess}); clean the data or use impute='median' (--impute median)")
            arr[~finite] = np.nan  # fit ignores them; transform fills them with the fitted centre
        for name in self.log_columns:
            j = cols.index(name)
            arr[:, j] = np.sign(arr[:, j]) * np.log1p(np.abs(arr[:, j]))
        if not fit and not all_finite:
            holes = np.isnan(arr)
            arr[holes] = np.broadcast_to(np.asarray(self.center_, dtype=np.float32), arr.shape)[holes]
        return arr

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "categorical": self.categorical, "log_columns": self.log_columns, "impute": self.impute,
            "scaling": self.scaling, "clip": self.clip, "na_values": self.na_values,
            "columns": self.columns_, "numeric": self.numeric_, "categories": self.categories_,
            "pooled": self.pooled_, "center": self.center_, "scale": self.scale_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TabularPreprocessor:
        """The fitted preprocessor of a model file, validated: a tampered or damaged state is a
        ModelFileError, never scores of NaN (zero scale) or silent broadcasting (short lists)."""
        columns, numeric, categories = d["columns"], d["numeric"], d["categories"]
        center, scale = d["center"], d["scale"]
        if not (_str_list(columns) and _str_list(numeric) and isinstance(categories, dict)
                and all(isinstance(k, str) and _str_list(v) for k, v in categories.items())):
            raise ModelFileError("config.json: the preprocessor's column lists are malformed")
        if set(numeric) | set(categories) != set(columns) or len(numeric) + len(categories) != len(columns):
            raise ModelFileError("config.json: the preprocessor's numeric and categorical columns do not match its columns")
        if not (isinstance(center, list) and isinstance(scale, list) and len(center) == len(scale) == len(numeric)):
            raise ModelFileError(f"config.json: the preprocessor needs {len(numeric)} centre and scale values")
        values = np.asarray(center + scale, dtype=object)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ModelFileError("config.json: the preprocessor's centre and scale must be numbers")
        if not np.isfinite(np.asarray(center + scale, dtype=float)).all() or min(scale, default=1) <= 0:
            raise ModelFileError("config.json: the preprocessor's centre and scale must be finite, scale > 0")
        log_columns = d["log_columns"]
        if not _str_list(log_columns) or not set(log_columns) <= set(numeric):
            raise ModelFileError("config.json: the preprocessor's log columns are not among its numeric columns")
        scaling = d.get("scaling", "robust")  # models saved before the choice existed are robust
        if scaling not in SCALINGS:
            raise ModelFileError(f"config.json: the preprocessor's scaling {scaling!r} is not one of {list(SCALINGS)}")
        try:
            clip = check_float(d.get("clip", SCALED_LIMIT), "clip", 0, SCALED_LIMIT, low_open=True)  # older models: none
        except ParameterError as error:
            raise ModelFileError(f"config.json: the preprocessor's {error}") from None
        na_values = d.get("na_values", [])  # before 0.9.11: none
        if not _str_list(na_values):
            raise ModelFileError("config.json: the preprocessor's na_values must be a list of strings")
        pooled = d.get("pooled", [])  # before 0.9.10: every category kept
        if not _str_list(pooled) or any(c not in categories or categories[c][-1:] != [OTHER_CATEGORY] for c in pooled):
            raise ModelFileError(f"config.json: the preprocessor's pooled columns must be categorical columns whose "
                                 f"last category is {OTHER_CATEGORY!r}")
        return cls(categorical=d["categorical"], log_columns=log_columns, impute=d["impute"], scaling=scaling,
                   clip=clip, na_values=na_values, columns_=columns, numeric_=numeric, categories_=categories, pooled_=pooled,
                   center_=center, scale_=scale)


def categories_kept(wide_columns: int) -> int:
    """The categories a column keeps at most, ``OTHER_CATEGORY`` among them, where
    ``wide_columns`` columns have more than ``MIN_CATEGORIES``: an equal share of
    ``CATEGORY_BUDGET``, from ``MIN_CATEGORIES`` to ``MAX_CATEGORIES``."""
    return int(min(MAX_CATEGORIES, max(MIN_CATEGORIES, CATEGORY_BUDGET // max(wide_columns, 1))))


def _row_name(index: pd.Index | None, position: int) -> str:
    """A row as a user finds it: a data row counted from 1 (below a file's header: the chunks
    of ``iter_table`` number the file's rows from 0 in a range), or the label a DataFrame's
    own index gives it (the rows kept by a filter, a time, an ID)."""
    if index is None or isinstance(index, pd.RangeIndex):
        return f"data row {(position if index is None else index[position]) + 1}"
    label = index[position]
    return f"the row labelled {label!r}" if isinstance(label, str) else f"the row labelled {label}"


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _check_float32_range(arr: np.ndarray, cols: list[str]) -> None:
    """Values beyond float32 would silently become inf: name their column instead."""
    if arr.size and -FLOAT32_MAX <= arr.min() and arr.max() <= FLOAT32_MAX:  # the common case, without a copy
        return  # (a NaN or an infinity fails the test and takes the careful way)
    with np.errstate(invalid="ignore"):
        big = np.abs(np.where(np.isfinite(arr), arr, 0.0)) > FLOAT32_MAX
    if big.any():
        bad = [cols[j] for j in np.flatnonzero(big.any(axis=0))]
        raise DataError(f"column(s) {bad[:10]} hold values beyond the float32 range (|x| > 3.4e38)")


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


# what marks a missing number, among numbers: punctuation alone ('?', the UCI archive's; '-',
# '.') or one of these words (case aside; a spreadsheet's errors among them); at most
# MISSING_MARKERS of them in one column
MISSING_WORDS = frozenset({"na", "n/a", "n.a.", "nan", "null", "none", "nil", "missing", "unknown", "empty", "blank",
                           "not available", "#n/a", "#na", "#value!", "#div/0!", "#num!", "#ref!", "#null!"})
MISSING_MARKERS = 3


def _non_numbers(column: pd.Series) -> tuple[pd.Series, float]:
    """A column's values that are no numbers, and the share of its values that are numbers."""
    values = column.dropna()
    numbers = pd.to_numeric(values, errors="coerce")
    return values[numbers.isna()], float(numbers.notna().mean()) if len(values) else 0.0


def _marks_missing(words: pd.Series) -> bool:
    """Whether a number column's non-numbers (``_non_numbers``) mark missing values: a few
    markers, ``MISSING_WORDS`` or punctuation."""
    if not 0 < words.nunique() <= MISSING_MARKERS:
        return False
    found = {str(w).strip().lower() for w in words.unique()}
    return all(w in MISSING_WORDS or (w and not any(ch.isalnum() for ch in w)) for w in found)


def non_number_error(column: pd.Series, name: object, fill: str = "impute='median', --impute median",
                     other_fix: str = "", reread: bool = False) -> DataError:
    """The error for a number column holding text: missing-value markers with the fix, to
    read them as missing (``na_values``, or with ``reread`` a file rewritten so) and ``fill``
    them; otherwise the first non-number, and ``other_fix``."""
    words = _non_numbers(column)[0]
    if _marks_missing(words):
        found = sorted({str(w).strip() for w in words.unique()})
        rows = f"{len(words)} row{'s' if len(words) > 1 else ''}"
        how = (f"e.g. pandas.read_csv(path, na_values={found!r}).to_csv(new_path, index=False)" if reread else
               f"na_values={found!r}, --na-values {shlex.quote(','.join(found))}")
        return DataError(f"column {name!r} marks missing numbers with {' and '.join(map(repr, found))} ({rows}): "
                         f"read them as missing ({how}), and fill them ({fill}) or leave those rows out")
    if not len(words):  # True, where booleans are no numbers
        words = column.dropna()
    where = _row_name(column.index, column.index.get_loc(words.index[0])) if column.index.is_unique else ""
    return DataError(f"column {name!r} should be numeric but holds a non-number ({words.iloc[0]!r}"
                     f"{', ' + where if where else ''}){other_fix}")


def some_columns(names: list[str]) -> str:
    """Up to 5 column names, as a list, and ``...`` where there are more (for notes)."""
    return f"{names[:5]}{' ...' if len(names) > 5 else ''}"


def _ordered(num: np.ndarray, names: list[str]) -> list[str]:
    """The columns of ``num`` that never decrease from row to row, through at least
    ``ORDERED_ROWS`` different values (NaN rows aside)."""
    if len(num) < ORDERED_ROWS:
        return []
    found = []
    for j, name in enumerate(names):
        column = num[:, j]
        if np.isnan(column).any():
            column = column[~np.isnan(column)]
        if (len(column) >= ORDERED_ROWS and column[-1] > column[0] and (column[1:] >= column[:-1]).all()
                and len(np.unique(column)) >= ORDERED_ROWS):
            found.append(name)
    return found


def without_arrow_types(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its Arrow-typed columns (``pd.ArrowDtype``: ``dtype_backend="pyarrow"``,
    Polars' ``to_pandas(use_pyarrow_extension_array=True)``) as pandas' own: text as ``str``,
    numbers as float64 with NaN for a gap, booleans as objects with None for one, anything
    else as objects. In Arrow a NaN is no missing value, so a text column's failed number
    conversions read as numbers and it was taken for a number column ("have no values")."""
    arrow = [c for c in df.columns if isinstance(df[c].dtype, pd.ArrowDtype)]
    if not arrow:
        return df
    import pyarrow as pa

    native = df.copy(deep=False)  # the caller's frame is not changed
    for c in arrow:
        column, kind = df[c], df[c].dtype.pyarrow_dtype
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            native[c] = column.astype("str")
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
            native[c] = column.to_numpy(dtype=np.float64, na_value=np.nan)
        elif pa.types.is_boolean(kind):
            native[c] = column.to_numpy(dtype=object, na_value=None)
        else:
            native[c] = column.astype(object)
    return native


def _category_codes(column: pd.Series, categories: list[str]) -> np.ndarray:
    """Each value's position in ``categories`` (-1 for another value or a missing one). A
    column of text held by Arrow (what pandas reads from a CSV or Parquet file) is looked up
    by Arrow's hash table, 12x faster than ``Index.get_indexer`` over Python strings; the
    same positions."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        found = pc.index_in(pa.array(column.array), value_set=pa.array(categories, type=pa.string()))
        codes = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    else:
        codes = pd.Index(categories).get_indexer(category_text(column).to_numpy())
    if (codes < 0).any():  # as text (a model saved before 0.9.9 kept 1.0 as "1.0"), a boolean's spellings read
        missed = np.flatnonzero(codes < 0)
        text = column.iloc[missed].astype(str).to_numpy()
        aliases = category_aliases(categories)
        if aliases:
            text = np.array([aliases.get(t, t) for t in text], dtype=object)
        codes[missed] = pd.Index(categories).get_indexer(text)
    return codes


# a column of True and False reads these spellings as those two (a database export writes t/f or
# 1/0, a spreadsheet TRUE/FALSE, a form yes/no: each value was an unseen category, and every row
# was flagged); the ONNX graph's lookup holds the same keys (export._category_keys)
BOOLEAN_SPELLINGS = {"True": ("true", "TRUE", "t", "T", "yes", "Yes", "YES", "y", "Y", "1", "1.0"),
                     "False": ("false", "FALSE", "f", "F", "no", "No", "NO", "n", "N", "0", "0.0")}


def category_aliases(categories: list[str]) -> dict[str, str]:
    """Other texts a column with these categories reads as one of them: a boolean's
    spellings, where the categories are exactly ``True`` and ``False``; none otherwise."""
    if sorted(categories) != ["False", "True"]:
        return {}
    return {alias: category for category, aliases in BOOLEAN_SPELLINGS.items() for alias in aliases}


def category_text(column: pd.Series) -> pd.Series:
    """A categorical column's values as the text its categories are kept as (a missing value
    as None, which matches none). A number reads the same whether it came as 1 or 1.0: a CSV
    chunk with a gap reads a column of whole numbers as floats, and JSON may send either (as
    plain text, 1.0 was a category unseen by a model trained on 1)."""
    if pd.api.types.is_float_dtype(column) or not (
            pd.api.types.is_numeric_dtype(column)
            or pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty", "boolean")):
        codes, uniques = pd.factorize(column)  # a few distinct values: each made text once
        names = np.array([label_text(v) for v in uniques] + [None], dtype=object)
        return pd.Series(names[codes], index=column.index)
    return column.astype(str)  # text, True/False and whole numbers read alike either way


# the text ``label_text`` writes for a number: any number, and a whole one
NUMBER_CATEGORY = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)
WHOLE_NUMBER_CATEGORY = re.compile(r"-?\d+")


def label_text(value: Any) -> str:
    """``1`` for 1 and 1.0, ``2.5`` for 2.5; anything but a number as ``str`` writes it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else str(value)


class _ColumnProblems:
    """The columns a fit refuses, gathered so that one error names them all: a table with a
    time, an ID and an amount written as text was refused one column per run."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def check(self, check: Any, column: pd.Series, name: object) -> None:
        try:
            check(column, name)
        except DataError as exc:
            self.add(str(exc))

    def raise_any(self) -> None:
        if len(self.messages) == 1:
            raise DataError(self.messages[0])
        if self.messages:
            said: dict[str, int] = {}  # a fix already given, and the number of the problem it follows
            listed = []
            for i, message in enumerate(self.messages, 1):
                problem, colon, fix = message.partition(": ")
                if colon and fix in said:  # three amounts written as '$1,200': the fix once, not three times
                    message = f"{problem}: as ({said[fix]})"
                said.setdefault(fix, i)
                listed.append(f"({i}) {message}")
            raise DataError(f"{len(self.messages)} columns cannot be features as they are: {' '.join(listed)}")


def _check_text_feature(column: pd.Series, name: str) -> None:
    """Refuse a text column found by ``categorical="auto"`` that is no category: dates
    written as text (as categories, every new day would be unseen), and values that are
    mostly different (a name, an ID, a time stamp): one-hot, each of them would be a
    category seen once, which a model learns nothing from and which every new row misses."""
    values = column.dropna().unique()  # once: each check reads a sample of them
    _check_not_time_text(values, name)
    rows, distinct = int(column.notna().sum()), len(values)
    if distinct >= FORMATTED_MIN_VALUES:
        _check_not_formatted_numbers(values, name)
    if rows >= ID_MIN_ROWS and distinct > ID_SHARE * rows:
        raise DataError(f"column {name!r} is text with {distinct} different values in {rows} rows (an ID, a name or "
                        "a time?): as categories it teaches nothing; leave it out (--drop-cols; --id-col keeps an ID "
                        "in the output), or name it as categorical to keep it")


# a date written as text holds a year (1000-2999, not within a word); a value without one ('1/2',
# 'May', 'T1000') is no date, though pandas would read one from it, and a time of day ('10:15')
# comes round every day, as a category does
DATE_TEXT = re.compile(r"(?<![\dA-Za-z])[12]\d{3}(?![\dA-Za-z])")
TIME_SAMPLE = 200  # distinct values that check reads


def _check_not_time_text(distinct: np.ndarray, name: object) -> None:
    """Refuse dates written as text ('2024-01-01 10:00', '12/03/2024', '2024-01') among a
    column's ``distinct`` values: ``iter_table`` reads a CSV's times as text, and as
    categories every new day would be one never seen."""
    values = pd.Series(distinct[:TIME_SAMPLE]).astype(str)
    if not len(values) or values.str.contains(DATE_TEXT).mean() < 0.9:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' notes on inferring each value's format
        times = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    if times.notna().mean() >= 0.9:
        written = "dates written as text" if isinstance(distinct[0], str) else "dates"  # a Parquet file's date type
        raise DataError(f"column {name!r} holds {written} ({values.iloc[0]!r}), which are no "
                        "feature: leave it out (--drop-cols), for a time series name it as the time column "
                        "(--time-col), or name it as categorical to keep it")


NUMBER_DECORATIONS = r"[\s,'$€£¥%]"  # thousands separators, currency and percent signs a spreadsheet writes


def _check_not_formatted_numbers(distinct: np.ndarray, name: str) -> None:
    """Refuse numbers written as a spreadsheet shows them ('3,366.33', '$12.50', '12%') among
    a column's ``distinct`` values, with the fix: read as text, they would be refused as an
    ID or become categories. They are not converted here, since '1.234,5' means another
    number in another country."""
    values = pd.Series(distinct[:FORMATTED_SAMPLE]).astype(str)
    plain = pd.to_numeric(values.str.replace(NUMBER_DECORATIONS, "", regex=True), errors="coerce")
    if plain.notna().mean() >= 0.9:
        raise DataError(f"column {name!r} holds numbers written as text ({values.iloc[0]!r}): write them as plain "
                        "numbers, without thousands separators or currency and percent signs (e.g. "
                        "pandas.read_csv(path, thousands=',') for the separators)")


def _looks_like_codes(column: pd.Series, name: object) -> bool:
    """A number column named as codes are (``CODE_NAME``) holding 3 to ``MAX_CATEGORIES``
    different whole numbers (fewer than one per row: a different one on every row is an ID,
    which ``_check_not_a_number_id`` refuses)."""
    if not (isinstance(name, str) and CODE_NAME.fullmatch(name.strip())):
        return False
    values = column.dropna().to_numpy()
    if values.dtype.kind not in "iuf" or not len(values) or not np.all(values == np.round(values)):
        return False
    return 3 <= len(np.unique(values)) <= min(MAX_CATEGORIES, len(values) // 2)


def _check_not_a_number_id(column: pd.Series, name: object) -> None:
    """Refuse a column named as an ID (``ID_NAME``) that holds a different whole number on
    every row: as a feature, every new row's new ID is far from the training IDs, which
    raises its score for that alone."""
    if not (isinstance(name, str) and ID_NAME.fullmatch(name.strip())) or len(column) < ID_MIN_ROWS:
        return
    values = column.dropna().to_numpy()
    if values.dtype.kind not in "iuf" or len(values) < ID_MIN_ROWS or not np.all(values == np.round(values)):
        return
    if len(np.unique(values)) == len(values):
        raise DataError(f"column {name!r} looks like an ID (a different whole number on every row): as a feature, "
                        "new rows' new IDs would raise their scores; leave it out (--id-col keeps it in the output, "
                        "--drop-cols drops it), or rename it if it is a measurement")


def _no_values(names: list[Any]) -> DataError:
    return DataError(f"column(s) {names[:10]}{' ...' if len(names) > 10 else ''} have no values (every training "
                     "row's is empty, NaN or inf): leave them out (--drop-cols)")


def _check_number_feature(column: pd.Series, name: object) -> None:
    """Refuse what would be a number column but is no feature: an empty one, times and durations (as
    nanoseconds they would make every later row anomalous), and the row numbers that
    pandas' ``to_csv`` writes by default (a column with a blank header, read back as
    ``Unnamed: 0``, counting the rows or the rows kept of them)."""
    if len(column) and column.isna().all():  # named here too, beside the other refused columns
        raise _no_values([name])
    if pd.api.types.is_datetime64_any_dtype(column):
        raise DataError(f"column {name!r} holds dates and times, which are no feature: leave it out (--drop-cols), "
                        "or for a time series name it as the time column (--time-col)")
    if pd.api.types.is_timedelta64_dtype(column):
        raise DataError(f"column {name!r} holds durations: give them as numbers (e.g. "
                        "frame[column].dt.total_seconds())")
    _check_not_a_number_id(column, name)
    if not (isinstance(name, str) and name.startswith("Unnamed: ")) or len(column) < 2:
        return
    values = column.to_numpy()
    # increasing whole numbers: the rows kept of a saved index (a normal value's rows, a sample)
    if np.issubdtype(values.dtype, np.integer) and np.all(np.diff(values) > 0):
        raise DataError(f"column {name!r} has a blank header and counts the rows ({values[0]:g} to {values[-1]:g}): "
                        "the index a DataFrame's to_csv writes? Save with to_csv(..., index=False), or name it as "
                        "the ID column (--id-col)")

