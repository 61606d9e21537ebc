"""Tables in, tensors out: file formats, the fitted preprocessor and its errors."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from aekit import DataError
from aekit.errors import DataNotice, ModelFileError, OutputError, ParameterError
from aekit.data import TabularPreprocessor, iter_table, read_table, split_columns
from aekit.data.tables import map_ahead, read_ahead
from aekit.data.recipes import KDD_FEATURES, kdd_to_csv

from .conftest import make_kdd_rows


def test_robust_scaling_one_hot_and_names():
    df = pd.DataFrame({"a": [1.0, 2, 3, 4, 100], "b": [0.0, 0, 0, 0, 1], "c": ["x", "y", "x", "x", "y"]})
    pre = TabularPreprocessor().fit(df)
    Z = pre.transform(df)
    assert pre.feature_names_out_ == ["a", "b", "c=x", "c=y"]
    assert pre.feature_groups_ == ["a", "b", "c", "c"]
    assert Z.dtype == np.float32 and Z.shape == (5, 4)
    np.testing.assert_allclose(Z[:, 0], (df.a - 3) / 2)  # median 3, IQR 2: the outlier does not set the scale
    assert pre.scale_[1] == pytest.approx(1.349 * np.std(df.b))  # IQR 0: the std, in IQR units
    np.testing.assert_array_equal(Z[:, 2:], [[1, 0], [0, 1], [1, 0], [1, 0], [0, 1]])
    restored = TabularPreprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(restored.transform(df), Z)


def test_column_names_that_are_not_text_are_read_as_text_without_renaming_the_callers_frame():
    from aekit.data.tables import as_frame

    df = pd.DataFrame(np.arange(12.0).reshape(6, 2))  # columns 0 and 1, as numbers
    assert list(as_frame(df).columns) == ["0", "1"] and list(df.columns) == [0, 1]


def test_scale_is_the_tighter_of_iqr_and_std():
    # a two-valued column (a pixel that is ink or paper): its IQR spans both values, wider
    # than its spread; the std (in IQR units) is tighter and sets the scale
    two_valued = np.r_[np.zeros(70), np.full(30, 16.0)]
    heavy = np.r_[np.linspace(-1, 1, 99), 1000.0]  # one outlier inflates the std, not the IQR
    pre = TabularPreprocessor().fit(pd.DataFrame({"pixel": two_valued, "heavy": heavy}))
    assert pre.scale_[0] == pytest.approx(1.349 * np.std(two_valued))
    assert pre.scale_[1] == pytest.approx(np.subtract(*np.percentile(heavy, [75, 25])))


def test_heavy_tailed_columns_are_named_at_fit():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"amount": rng.lognormal(3, 2, 1000), "normal": rng.normal(size=1000),
                       "signed": rng.standard_cauchy(1000), "flag": (rng.random(1000) < 0.01) * 1.0})
    assert TabularPreprocessor().fit(df).heavy_tailed_ == ["amount"]  # not negatives, not an IQR of 0
    assert TabularPreprocessor(log_columns=["amount"]).fit(df).heavy_tailed_ == []  # logged: not heavy now
    assert "heavy_tailed_" not in str(TabularPreprocessor().fit(df).to_dict())  # a note at fit, not saved


def test_columns_that_never_decrease_down_the_rows_are_named_at_fit():
    rng = np.random.default_rng(0)
    time = np.sort(rng.uniform(0, 1e5, 200))
    df = pd.DataFrame({"time": time, "x": rng.normal(size=200), "level": np.repeat(np.arange(4.0), 50),
                       "gappy": np.where(np.arange(200) % 7 == 0, np.nan, time)})
    # a time with gaps counts; 4 sorted levels (a table sorted by a class) do not; shuffled, nothing
    assert TabularPreprocessor(impute="median").fit(df).ordered_ == ["time", "gappy"]
    assert TabularPreprocessor(impute="median").fit(df.sample(frac=1, random_state=0)).ordered_ == []
    assert TabularPreprocessor().fit(df[["time", "x"]].iloc[:40]).ordered_ == []  # too few rows to say


def test_clip_limits_scaled_values_and_is_saved():
    # an edge pixel: mostly paper, rarely ink; standardised, its ink would weigh about 10 units
    edge = np.r_[np.zeros(99), 16.0]
    df = pd.DataFrame({"edge": edge, "middle": np.linspace(0, 16, 100)})
    plain = TabularPreprocessor(scaling="standard").fit(df)
    clipped = TabularPreprocessor(scaling="standard", clip=3.0).fit(df)
    assert plain.transform(df)[:, 0].max() > 9
    np.testing.assert_allclose(clipped.transform(df)[:, 0], np.clip(plain.transform(df)[:, 0], -3, 3))
    np.testing.assert_array_equal(clipped.transform(df)[:, 1], plain.transform(df)[:, 1])  # nothing beyond 3 there
    np.testing.assert_array_equal(TabularPreprocessor.from_dict(clipped.to_dict()).transform(df), clipped.transform(df))
    old = plain.to_dict()
    del old["clip"]  # a model saved before the setting existed keeps its unclipped scale
    assert TabularPreprocessor.from_dict(old).clip == plain.clip
    with pytest.raises(ModelFileError, match="clip"):
        TabularPreprocessor.from_dict({**clipped.to_dict(), "clip": -1})
    with pytest.raises(ParameterError, match="clip must be"):
        TabularPreprocessor(clip=float("nan"))


def test_a_file_for_a_model_trained_on_an_array_is_told_its_column_names():
    pre = TabularPreprocessor().fit(pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)),
                                                 columns=["x0", "x1", "x2"]))
    with pytest.raises(DataError, match=r"trained on an array of 3 columns, which aekit names x0 to x2: give the "
                                        r"file that header"):
        pre.transform(pd.DataFrame(np.zeros((2, 3)), columns=["a", "b", "c"]))
    with pytest.raises(DataError, match=r"missing column\(s\) \['x2'\] \(the model was trained on 3 columns\)$"):
        pre.transform(pd.DataFrame(np.zeros((2, 3)), columns=["x0", "x1", "c"]))


def test_unseen_categories_are_counted_not_fatal():
    pre = TabularPreprocessor().fit(pd.DataFrame({"n": [1.0, 2, 3], "c": ["a", "b", "a"]}))
    Z = pre.transform(pd.DataFrame({"n": [1.0, 2], "c": ["a", "zzz"]}))
    np.testing.assert_array_equal(Z[1, 1:], [0, 0])
    assert pre.unseen_counts_ == {"c": 1}


def test_text_held_by_arrow_and_by_python_encodes_alike(tmp_path):
    """A CSV's or Parquet file's text columns (Arrow strings) are looked up by Arrow's hash
    table: the same one-hot rows and unseen counts as Python strings, pooled columns too."""
    rng = np.random.default_rng(0)
    shop = [f"s{v:04d}" for v in rng.zipf(1.3, 2000) % 900]
    df = pd.DataFrame({"x": rng.normal(size=2000), "kind": rng.choice(["a", "b", "c"], 2000), "shop": shop})
    pre = TabularPreprocessor().fit(df)
    new = pd.DataFrame({"x": [0.0] * 6, "kind": ["a", "zz", None, "c", "1.0", "b"],
                        "shop": [shop[0], "never", None, shop[5], "s0001", shop[9]]})
    new.to_parquet(tmp_path / "new.parquet")
    arrow = pd.read_parquet(tmp_path / "new.parquet")
    assert isinstance(arrow["kind"].dtype, pd.StringDtype) and arrow["kind"].dtype.storage == "pyarrow"
    python = new.astype({"kind": object, "shop": object})
    expected = pre.transform(python)
    counts = pre.unseen_counts_
    np.testing.assert_array_equal(pre.transform(arrow), expected)
    assert pre.unseen_counts_ == counts == {"kind": 2}  # the pooled shop column counts none


def test_a_text_column_of_mostly_different_values_is_refused_unless_named():
    rows = 40
    df = pd.DataFrame({"n": np.arange(rows, dtype=float), "who": [f"user{i}" for i in range(rows)],
                       "kind": ["a", "b"] * (rows // 2)})
    with pytest.raises(DataError, match="column 'who' is text with 40 different values in 40 rows"):
        TabularPreprocessor().fit(df)
    assert TabularPreprocessor().fit(df.drop(columns="who")).categories_ == {"kind": ["a", "b"]}
    named = TabularPreprocessor(categorical=["who", "kind"]).fit(df)  # named: the user's choice
    assert len(named.feature_names_out_) == 1 + rows + 2
    assert TabularPreprocessor().fit(df.head(10)).categories_["who"][0] == "user0"  # too few rows to tell


@pytest.mark.parametrize("written, shown", [("{:,.2f}", "'1,000.00'"), ("${:.2f}", "'$1000.00'"), ("{:.1f}%", "'1000.0%'"),
                                            ("{:,.0f} €", "'1,000 €'")])
def test_numbers_written_as_a_spreadsheet_shows_them_are_named_with_the_fix(written, shown):
    """'3,366.33', '$12.50', '12%': read as text, they were refused as an ID."""
    df = pd.DataFrame({"n": np.arange(40.0), "amount": [written.format(1000 + 37 * i) for i in range(40)]})
    with pytest.raises(DataError, match=f"column 'amount' holds numbers written as text \\({re.escape(shown)}\\): "
                                        "write them as plain numbers"):
        TabularPreprocessor().fit(df)


def test_a_column_of_more_categories_than_the_cap_keeps_the_most_frequent_and_pools_the_rest():
    """A merchant column of 8,000 values made 8,000 one-hot features: 200,000 training rows
    ran out of 24 GB. The most frequent MAX_CATEGORIES - 1 are kept; every other value, seen
    in training or not, is one more feature, and no unseen category is counted."""
    from aekit.data.preprocess import MAX_CATEGORIES, OTHER_CATEGORY

    rng = np.random.default_rng(0)
    shop = [f"s{v:04d}" for v in rng.zipf(1.3, 3000) % 1000]
    df = pd.DataFrame({"x": rng.normal(size=3000), "shop": shop})
    pre = TabularPreprocessor().fit(df)
    kept = pre.categories_["shop"]
    counts = sorted(pd.Series(shop).value_counts().items(), key=lambda kv: (-kv[1], kv[0]))  # ties: text order
    assert pre.pooled_ == ["shop"] and len(kept) == MAX_CATEGORIES and kept[-1] == OTHER_CATEGORY
    assert kept[:-1] == sorted(name for name, _ in counts[:MAX_CATEGORIES - 1])
    assert any("the 255 most frequent are kept" in note for note in pre.notes())
    rare, new = counts[-1][0], "never-seen"
    Z = pre.transform(pd.DataFrame({"x": [0.0] * 4, "shop": [kept[0], rare, new, None]}))
    onehot = Z[:, 1:]
    np.testing.assert_array_equal(onehot.argmax(1)[:3], [0, MAX_CATEGORIES - 1, MAX_CATEGORIES - 1])
    assert onehot[3].sum() == 0 and pre.unseen_counts_ == {}  # a missing value: none, as before
    again = TabularPreprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(again.transform(df.head(50)), pre.transform(df.head(50)))
    broken = {**pre.to_dict(), "pooled": ["x"]}
    with pytest.raises(ModelFileError, match="pooled columns must be categorical columns"):
        TabularPreprocessor.from_dict(broken)


def test_several_columns_of_many_categories_share_a_budget():
    """Eight columns of 3,000 values kept 256 categories each, 2,048 features: 50,000 rows
    trained in 152 s and 2.8 GB. Beyond four such columns each keeps an equal share of
    CATEGORY_BUDGET (at least MIN_CATEGORIES); a column of few categories keeps them all."""
    from aekit.data.preprocess import CATEGORY_BUDGET, MAX_CATEGORIES, MIN_CATEGORIES, categories_kept

    assert [categories_kept(n) for n in (0, 1, 4, 5, 8, 100)] == [
        MAX_CATEGORIES, MAX_CATEGORIES, MAX_CATEGORIES, CATEGORY_BUDGET // 5, CATEGORY_BUDGET // 8, MIN_CATEGORIES]
    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"c{j}": [f"v{v}" for v in rng.zipf(1.2, 3000) % 1000] for j in range(8)})
    df["few"] = rng.choice(["a", "b", "c"], 3000)
    pre = TabularPreprocessor().fit(df)
    assert pre.pooled_ == [f"c{j}" for j in range(8)] and pre.categories_["few"] == ["a", "b", "c"]
    assert {len(pre.categories_[f"c{j}"]) for j in range(8)} == {CATEGORY_BUDGET // 8}
    assert any(f"the {CATEGORY_BUDGET // 8 - 1} most frequent are kept" in note for note in pre.notes())
    assert pre.transform(df.head(5)).shape == (5, 8 * (CATEGORY_BUDGET // 8) + 3)


def test_formatted_numbers_with_few_values_are_refused_too_but_a_few_levels_stay_categories():
    """'12%' with 31 values became 31 categories (only a column of mostly different values was checked)."""
    rows = 200
    df = pd.DataFrame({"n": np.arange(rows, dtype=float), "discount": [f"{i % 31}%" for i in range(rows)]})
    with pytest.raises(DataError, match="column 'discount' holds numbers written as text"):
        TabularPreprocessor().fit(df)
    levels = df.assign(discount=[f"{10 * (i % 3)}%" for i in range(rows)])  # 3 levels: a code's, kept
    assert TabularPreprocessor().fit(levels).categories_ == {"discount": ["0%", "10%", "20%"]}


@pytest.mark.parametrize("written", ["%Y-%m-%d", "%d/%m/%Y %H:%M", "%Y-%m", "%Y-%m-%dT%H:%M:%S%z"])
def test_dates_written_as_text_are_refused_unless_named(written):
    """A CSV's times are read as text; a day repeated over many rows became a category, and
    every new day an unseen one. A time of day comes round every day: it stays a category."""
    rows = 120
    when = pd.date_range("2024-03-01", periods=rows // 4, freq="7D", tz="UTC").repeat(4).strftime(written)
    df = pd.DataFrame({"n": np.arange(rows, dtype=float), "when": when})
    with pytest.raises(DataError, match=r"column 'when' holds dates written as text .* \(--time-col\)"):
        TabularPreprocessor().fit(df)
    assert "when" in TabularPreprocessor(categorical=["when"]).fit(df).categories_  # named: the user's choice
    hours = df.assign(when=[f"{h:02d}:00" for h in range(24)] * (rows // 24))
    assert TabularPreprocessor().fit(hours).categories_["when"][:2] == ["00:00", "01:00"]


def test_a_parquet_files_date_column_is_named_as_dates(tmp_path):
    """A date type (Parquet's date32, read as Python dates) is no text: named as dates."""
    df = pd.DataFrame({"n": np.arange(60.0), "day": [pd.Timestamp("2024-01-01").date() + pd.Timedelta(days=i % 20)
                                                    for i in range(60)]})
    df.to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"column 'day' holds dates \('2024-01-01'\), which are no feature"):
        TabularPreprocessor().fit(read_table(tmp_path / "d.parquet"))


def test_codes_that_a_date_parser_would_read_are_no_times():
    """'T1000', '1/2' and month names parse as dates in pandas; they hold neither a year nor hh:mm."""
    rows = 60
    df = pd.DataFrame({"n": np.arange(rows, dtype=float), "size": ["1/2", "3/4", "1/4"] * (rows // 3),
                       "month": ["May", "June", "July", "March"] * (rows // 4)})
    assert set(TabularPreprocessor().fit(df).categories_) == {"size", "month"}
    ids = df.assign(unit=[f"T{1000 + i}" for i in range(rows)])
    with pytest.raises(DataError, match="column 'unit' is text with 60 different values"):
        TabularPreprocessor().fit(ids)


def test_every_refused_column_is_named_in_one_error():
    """A table with an ID, a time and an amount written as text was refused one column per run."""
    rows = 40
    df = pd.DataFrame({"who": [f"user{i}" for i in range(rows)], "n": np.arange(rows, dtype=float),
                       "day": pd.date_range("2024-01-01", periods=rows).strftime("%Y-%m-%d"),
                       "amount": [f"${100 + i}.50" for i in range(rows)], "kind": ["a", "b"] * (rows // 2),
                       "empty": [np.nan] * rows})
    with pytest.raises(DataError, match=r"^4 columns cannot be features as they are: \(1\) column 'who' .* "
                                        r"\(2\) column 'day' .* \(3\) column 'amount' holds numbers .* "
                                        r"\(4\) column\(s\) \['empty'\] have no values") as err:
        TabularPreprocessor().fit(df)
    assert "\n" not in str(err.value)
    # the same fix for three columns is given once
    money = df.drop(columns=["who", "day", "empty"]).assign(fee=[f"{i}%" for i in range(rows)],
                                                           tax=[f"1,{i:03d}.5" for i in range(rows)])
    with pytest.raises(DataError) as err:
        TabularPreprocessor().fit(money)
    assert str(err.value).count("write them as plain numbers") == 1
    assert "(2) column 'fee' holds numbers written as text ('0%'): as (1) (3) column 'tax'" in str(err.value)


def test_a_number_column_named_as_an_id_with_a_different_value_per_row_is_refused():
    """As a feature, every new row's new ID would be far from the training IDs."""
    n = 40
    df = pd.DataFrame({"customer_id": np.arange(1000, 1000 + n), "amount": np.linspace(1, 2, n)})
    with pytest.raises(DataError, match="column 'customer_id' looks like an ID .* leave it out"):
        TabularPreprocessor().fit(df)
    assert TabularPreprocessor().fit(df.rename(columns={"customer_id": "visits"})).numeric_ == ["visits", "amount"]
    repeated = df.assign(customer_id=np.arange(n) % 7)  # a code shared by rows: a feature like any other
    assert TabularPreprocessor().fit(repeated).numeric_ == ["customer_id", "amount"]


def test_number_columns_named_as_codes_get_a_note_naming_the_fix():
    """A store ID or zip code of a few whole numbers is read as a number (1049 beside 1050):
    the note names them, and the --categorical list that keeps every category column too."""
    rng = np.random.default_rng(0)
    n = 600
    df = pd.DataFrame({"amount": rng.lognormal(3, 1, n), "store_id": rng.integers(1001, 1051, n),
                       "Zip Code": rng.choice([10115, 20095, 80331], n), "productCode": rng.integers(1, 9, n),
                       "hour": rng.integers(0, 24, n), "country": rng.choice(["DE", "FR"], n)})
    pre = TabularPreprocessor().fit(df)
    assert pre.code_like_ == ["store_id", "Zip Code", "productCode"]
    note = next(n for n in pre.notes() if "named like codes" in n)
    assert note.endswith("name them categorical (--categorical 'country,store_id,Zip Code,productCode')")
    named = TabularPreprocessor(categorical=["country", "store_id", "Zip Code", "productCode"]).fit(df)
    assert named.code_like_ == [] and not any("named like codes" in n for n in named.notes())
    assert named.categories_["store_id"][:2] == ["1001", "1002"]


def test_a_frame_of_arrow_types_reads_as_its_pandas_twin():
    """``dtype_backend="pyarrow"`` (or Polars' ``to_pandas``): its text column was taken for
    numbers (in Arrow a failed conversion's NaN is no missing value) and refused as empty."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=200), "n": rng.integers(0, 50, 200), "kind": rng.choice(["a", "b"], 200),
                       "flag": rng.random(200) < 0.3})
    arrow = df.convert_dtypes(dtype_backend="pyarrow")
    assert all(isinstance(t, pd.ArrowDtype) for t in arrow.dtypes)
    pre, twin = TabularPreprocessor().fit(df), TabularPreprocessor().fit(arrow)
    assert twin.numeric_ == pre.numeric_ == ["x", "n"] and twin.categories_ == pre.categories_
    np.testing.assert_array_equal(twin.transform(arrow), pre.transform(df))
    gap = arrow.copy()
    gap.loc[3, "x"] = None
    with pytest.raises(DataError, match=r"NaN or inf in column\(s\) \['x'\] \(the first in data row 4"):
        pre.transform(gap)
    assert isinstance(arrow["x"].dtype, pd.ArrowDtype)  # the caller's frame is left as it was


def test_an_arrow_table_is_a_table_with_its_names():
    """A pyarrow Table (or a Polars frame, through Arrow's C stream): numpy read it as objects
    and the model trained on one column 'x0', silently."""
    import pyarrow as pa

    from aekit import AnomalyDetector

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300), "kind": rng.choice(["a", "b"], 300)})
    det = AnomalyDetector(epochs=2, n_estimators=1, random_state=0).fit(pa.Table.from_pandas(df))
    assert det.preprocessor_.numeric_ == ["x", "y"] and list(det.preprocessor_.categories_) == ["kind"]
    batch = pa.RecordBatch.from_pandas(df.head(50))
    np.testing.assert_array_equal(det.decision_function(batch), det.decision_function(df.head(50)))


def test_a_boolean_column_is_two_categories():
    df = pd.DataFrame({"n": np.arange(30, dtype=float), "flag": np.arange(30) % 3 == 0})
    pre = TabularPreprocessor().fit(df)
    assert pre.feature_names_out_ == ["n", "flag=False", "flag=True"]
    Z = pre.transform(df.assign(flag=df.flag.astype(object)))  # as a chunk with a missing value would read
    np.testing.assert_array_equal(Z[:3, 1:], [[0, 1], [1, 0], [1, 0]])
    # with a gap (a Parquet file's nullable booleans, a CSV's blank field): two categories too,
    # the gap none of them (they were a number column 0/1, its gap a NaN that training refused)
    gap = df.assign(flag=df.flag.astype(object).where(df.index != 4, None))
    gapped = TabularPreprocessor().fit(gap)
    assert gapped.feature_names_out_ == pre.feature_names_out_
    np.testing.assert_array_equal(gapped.transform(gap)[3:6, 1:], [[0, 1], [0, 0], [1, 0]])
    assert gapped.unseen_counts_ == {}


def test_numbers_stored_as_objects_are_a_number_column():
    """A numpy object array (text and numbers side by side) or JSON records give object columns."""
    df = pd.DataFrame({"k": ["a", "b"] * 15, "v": pd.Series(np.arange(30.0), dtype=object)})
    pre = TabularPreprocessor().fit(df)
    assert pre.numeric_ == ["v"] and pre.categories_ == {"k": ["a", "b"]}
    np.testing.assert_allclose(pre.transform(df.head(2))[:, 0], (np.arange(2) - pre.center_[0]) / pre.scale_[0])
    with pytest.raises(DataError, match="column 'v' should be numeric but holds a non-number \\('x', data row 1\\)"):
        pre.transform(df.head(2).assign(v=["x", 1.0]))


def test_a_saved_index_is_refused_as_a_feature(tmp_path):
    df = pd.DataFrame({"x": np.random.default_rng(0).normal(size=40), "y": np.arange(40.0) % 7})
    df.to_csv(tmp_path / "with_index.csv")  # pandas' default: the index in a column with a blank header
    table = read_table(tmp_path / "with_index.csv")
    with pytest.raises(DataError, match="column 'Unnamed: 0' has a blank header and counts the rows"):
        TabularPreprocessor().fit(table)
    with pytest.raises(DataError, match="counts the rows"):  # the rows of one class, a sample
        TabularPreprocessor().fit(table.iloc[::3])
    assert TabularPreprocessor().fit(table.drop(columns="Unnamed: 0")).numeric_ == ["x", "y"]


def test_times_and_durations_are_no_features():
    df = pd.DataFrame({"x": np.arange(30.0) % 4, "when": pd.date_range("2024-01-01", periods=30, freq="h")})
    with pytest.raises(DataError, match="column 'when' holds dates and times"):
        TabularPreprocessor().fit(df)
    with pytest.raises(DataError, match="column 'when' holds durations"):
        TabularPreprocessor().fit(df.assign(when=df.when - df.when.iloc[0]))


def test_log_columns_and_explicit_categorical():
    df = pd.DataFrame({"Amount": [0.0, 10, 100, 1000, 1e6], "code": [1, 2, 1, 2, 3]})
    pre = TabularPreprocessor(categorical=["code"], log_columns=["Amount"]).fit(df)
    assert pre.feature_names_out_ == ["Amount", "code=1", "code=2", "code=3"]
    assert pre.center_[0] == pytest.approx(np.log1p(100))
    with pytest.raises(DataError, match="log-transform"):
        TabularPreprocessor(log_columns=["nope"]).fit(df)


def test_numbers_named_categorical_read_alike_as_1_and_1_0():
    # a CSV chunk with a gap reads whole numbers as floats; JSON may send 1 or 1.0: the same category
    df = pd.DataFrame({"a": np.arange(6.0), "flag": [0, 1] * 3, "rate": [1.5, 2.0] * 3})
    pre = TabularPreprocessor(categorical=["flag", "rate"]).fit(df)
    assert pre.categories_ == {"flag": ["0", "1"], "rate": ["1.5", "2"]}
    later = df.assign(flag=[0.0, 1.0, np.nan, 1.0, 0.0, 1.0], rate=pd.Series([1.5, 2, 1.5, 2, 1.5, 2], dtype=object))
    Z = pre.transform(later)
    assert pre.unseen_counts_ == {}
    np.testing.assert_array_equal(Z[:, 1:3], [[1, 0], [0, 1], [0, 0], [0, 1], [1, 0], [0, 1]])  # the gap: no category
    np.testing.assert_array_equal(Z[:, 3:], pre.transform(df)[:, 3:])
    saved = pre.to_dict()  # a model saved before 0.9.9 kept the floats' text, "2.0"
    old = TabularPreprocessor.from_dict({**saved, "categories": {"flag": ["0", "1"], "rate": ["1.5", "2.0"]}})
    np.testing.assert_array_equal(old.transform(df), pre.transform(df))


def test_text_in_a_numeric_column_is_reported():
    df = pd.DataFrame({"a": ["1", "2", "3", "oops", *map(str, range(20))], "b": range(24)})
    with pytest.raises(DataError, match="column 'a'.*oops"):
        TabularPreprocessor().fit(df)


def test_nan_is_an_error_unless_imputed():
    df = pd.DataFrame({"a": [1.0, np.nan, 3, 4], "b": [1.0, 2, np.inf, 4]})
    with pytest.raises(DataError, match=r"NaN or inf in column\(s\) \['a', 'b'\]"):
        TabularPreprocessor().fit(df)
    pre = TabularPreprocessor(impute="median").fit(df)
    Z = pre.transform(df)
    assert np.isfinite(Z).all() and Z[1, 0] == 0 and Z[2, 1] == 0  # filled with the centre



@pytest.mark.parametrize("impute", [None, "median"])
def test_an_empty_column_is_named_with_the_fix_whatever_the_imputation(impute):
    """It was 'NaN or inf ... use --impute median', which then failed on the same column."""
    df = pd.DataFrame({"a": [1.0, np.nan, 3, 4], "empty": [np.nan] * 4, "b": [1.0, 2, 3, 4]})
    with pytest.raises(DataError, match=r"column\(s\) \['empty'\] have no values .* leave them out \(--drop-cols\)"):
        TabularPreprocessor(impute=impute).fit(df)

def test_csv_and_parquet_read_the_same(tmp_path):
    df = make_kdd_rows(50, 5)
    df.to_csv(tmp_path / "t.csv", index=False)
    df.to_parquet(tmp_path / "t.parquet", index=False)
    a, b = read_table(tmp_path / "t.csv"), read_table(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    chunks = list(iter_table(tmp_path / "t.parquet", chunksize=16))
    assert [len(c) for c in chunks] == [16, 16, 16, 7]
    assert sum(len(c) for c in iter_table(tmp_path / "t.csv", chunksize=7)) == 55
    # compressed as gzip, bzip2 or xz: read as they stream, the same table
    for name, compression in (("t.csv.gz", "gzip"), ("t.csv.bz2", "bz2"), ("t.tsv.xz", "xz")):
        df.to_csv(tmp_path / name, index=False, compression=compression, sep="\t" if ".tsv" in name else ",")
        pd.testing.assert_frame_equal(read_table(tmp_path / name), a)
        assert sum(len(c) for c in iter_table(tmp_path / name, chunksize=7)) == 55
    for name, data, said in (("cut.csv.bz2", (tmp_path / "t.csv.bz2").read_bytes()[:-30], "truncated or corrupted bzip2"),
                             ("junk.csv.bz2", b"not bzip2 at all" * 10, "is a corrupted bzip2 file"),
                             ("junk.csv.xz", b"not xz at all" * 10, "truncated or corrupted xz file")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=said):
            read_table(tmp_path / name)
    for name in ("t.csv", "t.parquet"):  # one column alone reads as in the whole table
        only = [c for c in iter_table(tmp_path / name, chunksize=16, columns=["protocol_type"])]
        assert [list(c.columns) for c in only] == [["protocol_type"]] * 4
        pd.testing.assert_series_equal(pd.concat(only, ignore_index=True).protocol_type, a.protocol_type)
        with pytest.raises(DataError, match=r"column\(s\) \['nope'\] not found"):
            next(iter_table(tmp_path / name, columns=["nope"]))


NUMBERS = "".join(f"{i},{i / 4}\n" for i in range(40))
ODD_CSVS = {  # each read the fast way where it can, and the careful way from where it cannot
    "numbers": "a,b\n" + NUMBERS,
    "spaces after commas": "a, b\n" + NUMBERS.replace(",", ", "),
    "an empty field and NA late": "a,b\n" + NUMBERS + "1,\n2,NA\n" + NUMBERS,
    "text late": "a,b\n" + NUMBERS + "1,x\n" + NUMBERS,
    "categories after a space": "a,k\n" + "".join(f"{i}, c{i % 3}\n" for i in range(40)),
    "categories": "a,k\n" + "".join(f"{i},c{i % 3}\n" for i in range(40)),
    "an NA marker among categories": "a,k\n" + "".join(f"{i},{'null' if i == 25 else 'x'}\n" for i in range(40)),
    "a quoted line break late": "a,k\n" + "".join(f"{i},x\n" for i in range(25)) + '1,"two\nlines"\n' + NUMBERS,
    "blank lines": "a,b\n1,2\n\n" + NUMBERS + "\n\n",
    "no final line end": "a,b\n" + NUMBERS + "7,8",
    "quotes": 'a,b\n1,"2"\n3, "4"\n' + NUMBERS,
    "CRLF and a BOM": "\ufeffa,b\r\n" + NUMBERS.replace("\n", "\r\n"),
    "booleans": "a,b\n" + "".join(f"{i},{i % 2 == 0}\n" for i in range(40)),
    "a short row": "a,b,c\n1,2\n" + NUMBERS.replace("\n", ",5\n"),
    "a long row late": "a,b\n" + NUMBERS + "1,2,3\n" + NUMBERS,
    "a long row where a chunk starts": "a,b\n" + NUMBERS[:NUMBERS.index("\n10,") + 1] + "1,2,3\n" + NUMBERS,
    "one field more on every row": "a,b\n" + NUMBERS.replace("\n", ",9\n"),
}


@pytest.mark.parametrize("name", ["numbers", "an empty field and NA late", "text late", "a long row late"])
def test_a_ramped_read_starts_with_smaller_chunks_and_reads_the_same_table(tmp_path, name):
    """``iter_table(..., ramp=True)`` (issue 34): chunks of an eighth, a quarter and a half of
    ``chunksize`` first, then whole ones, then halves of what is left, together the same
    table as the plain read, also where the careful read takes over part of the way."""
    path = tmp_path / "t.csv"
    path.write_bytes(ODD_CSVS[name].encode())
    try:
        plain = pd.concat(list(iter_table(path, chunksize=16)))
    except DataError as exc:  # the same error either way
        with pytest.raises(DataError, match=re.escape(str(exc))):
            list(iter_table(path, chunksize=16, ramp=True))
        return
    ramped = list(iter_table(path, chunksize=16, ramp=True))
    if name == "numbers":
        assert [len(c) for c in ramped] == [2, 4, 8, 13, 7, 3, 2, 1]  # 40 rows: 26 left after 3 chunks
    # as text: a chunk holding text reads its column as text, wherever chunks begin
    pd.testing.assert_frame_equal(pd.concat(ramped).astype(str), plain.astype(str))


def test_a_ramped_read_ends_with_smaller_chunks_and_takes_whole_ones_past_a_wrong_guess():
    """The tail of a ramped read: the last two chunks' worth of rows in halves of what is
    left (so that threads scoring a chunk each finish together), down to an eighth of a
    chunk; where the file goes on past the guessed rows, whole chunks again."""
    from aekit.data.tables import _ramped_size

    def sizes(total: float, rows: int) -> list[int]:
        out, read = [], 0
        while read < rows:
            out.append(min(_ramped_size(len(out), read, 50_000, total), rows - read))
            read += out[-1]
        return out

    exact = sizes(1e6, 1_000_000)
    assert exact[:3] == [6_250, 12_500, 25_000] and exact[3:21] == [50_000] * 18
    assert exact[21:] == [28_125, 14_063, 7_031, 6_250, 781]
    longer = sizes(500_000, 1_000_000)  # the guess half the true rows: whole chunks once past it
    assert max(longer[-5:]) == 50_000 and sum(longer) == 1_000_000


@pytest.mark.parametrize("name", ODD_CSVS)
@pytest.mark.parametrize("chunksize", [10, 1000])
def test_csv_chunks_are_pandas_careful_chunks(tmp_path, name, chunksize):
    """The fast read of numbers (issue 34) gives what pandas' careful read gives: the same
    chunks, values, dtypes and index, or the same error."""
    from aekit.data.tables import _csv_chunks

    path = tmp_path / "t.csv"
    path.write_bytes(ODD_CSVS[name].encode())
    try:
        expected = list(pd.read_csv(path, skipinitialspace=True, chunksize=chunksize))
    except pd.errors.ParserError as exc:
        with pytest.raises(pd.errors.ParserError, match=str(exc).strip()):
            list(_csv_chunks(path, ",", chunksize))
        return
    found = list(_csv_chunks(path, ",", chunksize))
    assert len(found) == len(expected)
    for got, want in zip(found, expected, strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_a_plain_csv_is_read_the_fast_way_only(tmp_path, monkeypatch):
    """A table of numbers and plain text never pays for the careful read (the speed issue 34
    measured); one with an NA marker switches to it at the first chunk that holds one."""
    from aekit.data import tables

    calls = []
    real = pd.read_csv

    def spy(*args, **kwargs):
        calls.append("fast" if kwargs.get("na_filter") is False else "careful")
        return real(*args, **kwargs)

    monkeypatch.setattr(tables.pd, "read_csv", spy)
    (tmp_path / "n.csv").write_text("a,b\n" + NUMBERS)
    assert sum(len(c) for c in iter_table(tmp_path / "n.csv", 7)) == 40
    assert calls.count("careful") == 1  # the header's names, read from its one line
    calls.clear()
    (tmp_path / "t.csv").write_text("a,b,kind\n" + NUMBERS.replace("\n", ",tcp\n"))
    assert sum(len(c) for c in iter_table(tmp_path / "t.csv", 7)) == 40
    assert calls.count("careful") == 1  # text with no leading space and no NA marker reads the same
    calls.clear()
    (tmp_path / "na.csv").write_text("a,b\n" + NUMBERS + "1,NA\n")
    assert sum(len(c) for c in iter_table(tmp_path / "na.csv", 7)) == 41
    assert calls.count("careful") == 2


def test_text_late_in_a_long_number_column_reads_as_one_type_without_a_pandas_warning(tmp_path):
    """pandas' low-memory reading infers each column's type piece by piece within a chunk:
    text far into a number column made a mixed column and a DtypeWarning on stderr, beside
    the one-line error that scoring then gives."""
    import warnings

    rows = pd.DataFrame(np.arange(40_000)[:, None] % np.arange(2, 32), columns=[f"c{j}" for j in range(30)])
    rows = rows.astype({"c0": object})
    rows.loc[36_000, "c0"] = "twelve"  # past the first 32,768 rows, the piece low-memory reading takes
    rows.to_csv(tmp_path / "late.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chunks = list(iter_table(tmp_path / "late.csv", chunksize=40_000))
    assert not [w for w in caught if "DtypeWarning" in type(w.message).__name__]
    assert len(chunks) == 1 and chunks[0]["c0"].map(type).nunique() == 1  # all text: one type


def test_read_ahead_yields_in_order_and_raises_where_the_reader_failed():
    def chunks():
        yield from range(3)
        raise DataError("t.csv: row 7 is truncated")

    reader = read_ahead(chunks())
    assert [next(reader) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(DataError, match="row 7 is truncated"):
        next(reader)


@pytest.mark.parametrize("workers", [1, 3])
def test_map_ahead_works_in_order_on_threads_and_raises_the_first_error(workers):
    import itertools
    import threading
    import time

    def slow_square(n: int) -> tuple[int, str]:
        time.sleep(0.01 * (n % 3 == 0))  # later items finish first
        if n == 7:
            raise DataError("item 7 is bad")
        return n * n, threading.current_thread().name

    out = map_ahead(slow_square, iter(range(7)), workers)
    results = list(out)
    assert [r[0] for r in results] == [n * n for n in range(7)]
    assert all(name.startswith("aekit-work") for _, name in results) == (workers > 1)
    failing = map_ahead(slow_square, iter(range(10)), workers)
    with pytest.raises(DataError, match="item 7 is bad"):
        list(failing)
    endless = map_ahead(slow_square, itertools.count(8), workers)  # only the caller can stop it
    assert next(endless)[0] == 64
    endless.close()
    assert not any(t.name.startswith(("aekit-work", "aekit-read-ahead")) for t in threading.enumerate())


def test_read_ahead_stops_its_thread_and_gives_blas_its_cores_back(tmp_path):
    import itertools
    import threading

    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas_threads()
    reader = read_ahead(itertools.count())  # endless: only the caller can stop it
    assert [next(reader) for _ in range(5)] == [0, 1, 2, 3, 4]
    reader.close()
    assert not any(t.name == "aekit-read-ahead" for t in threading.enumerate())
    assert blas_threads() == before
    (tmp_path / "small.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    assert [c.shape for c in read_ahead(iter_table(tmp_path / "small.csv", chunksize=2))] == [(2, 2), (1, 2)]


@pytest.mark.parametrize("content, name, message", [
    ("", "empty.csv", "is empty"),
    ("a,b,c\n", "header.csv", "header but no data rows"),
    ("a,b\n1,2\n", "table.xlsx", r"unsupported file type '.xlsx'; expected .csv, .tsv or .parquet: convert it, e.g. "
                            r"pandas.read_excel\(path\).to_csv\(new_path, index=False\)"),
    ("PAR1 this is not parquet", "bad.parquet", "not a readable Parquet"),
    ("a,b\n1,2\n", "data", r"data has no file type in its name; .* \(e.g. rename it to .csv\)"),
])
def test_bad_files(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)


def test_unexpanded_pattern_says_what_it_matches(tmp_path):
    """A quoted glob (as the Dask engine takes them) names no file: the error says it is a
    pattern, how many files it matches, and what reads them, instead of 'does not exist'."""
    for i in range(2):
        pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / f"p{i}.parquet")
    with pytest.raises(DataError, match=r"is a pattern \(2 files match\): .* give that folder, or .*--engine dask"):
        read_table(tmp_path / "*.parquet")
    with pytest.raises(DataError, match=r"does not exist \(as a pattern it matches no file\)"):
        read_table(tmp_path / "*.csv")


def test_split_columns():
    df = pd.DataFrame({"id": [1, 2], "x": [0.1, 0.2], "y": [0, 1]})
    X, labels, ids = split_columns(df, "y", "id")
    assert list(X.columns) == ["x"] and labels.tolist() == [0, 1] and ids.tolist() == [1, 2]
    with pytest.raises(DataError, match="label column 'nope' not found"):
        split_columns(df, "nope")


def test_kdd_recipe_adds_the_header(tmp_path):
    raw = tmp_path / "kddcup.data"
    make_kdd_rows(30, 4).to_csv(raw, header=False, index=False)
    assert kdd_to_csv(raw, tmp_path / "kdd.csv") == 34
    df = read_table(tmp_path / "kdd.csv")
    assert list(df.columns) == [*KDD_FEATURES, "label"] and len(KDD_FEATURES) == 41
    assert set(df.label) == {"normal.", "smurf.", "neptune."}
    (tmp_path / "short.data").write_text("1,tcp,http\n")
    with pytest.raises(DataError, match="fewer than 42 fields"):
        kdd_to_csv(tmp_path / "short.data", tmp_path / "x.csv")
    (tmp_path / "raw.csv").write_bytes(raw.read_bytes())
    with pytest.raises(OutputError, match="also an input"):
        kdd_to_csv(tmp_path / "raw.csv", tmp_path / "raw.csv")
    with pytest.raises(OutputError, match="aekit did not write it"):  # not even its own earlier table
        kdd_to_csv(raw, tmp_path / "kdd.csv")


def test_a_one_column_table_is_read_unless_another_separator_splits_every_line(tmp_path):
    (tmp_path / "one.csv").write_text("price;usd\n1.5\n2.5\n")  # one column whose name holds a ';'
    assert read_table(tmp_path / "one.csv").columns.tolist() == ["price;usd"]
    (tmp_path / "two.csv").write_text("a|b\n1|2\n3|4\n")
    with pytest.warns(DataNotice, match=r"two.csv: fields separated by '\|': read so"):
        assert read_table(tmp_path / "two.csv").to_dict("list") == {"a": [1, 3], "b": [2, 4]}


def test_a_spreadsheets_semicolons_and_decimal_commas_are_read_with_a_note(tmp_path):
    """A European spreadsheet's CSV export (fields by ';', decimals 1,5) was refused with a
    pandas line to rewrite it; it reads as the same table written with commas would."""
    frame = pd.DataFrame({"amount": [1.5, -2.25, 1000.0] * 40, "count": [1, 2, 3] * 40, "land": ["DE", "AT", "CH"] * 40})
    frame.to_csv(tmp_path / "eu.csv", index=False, sep=";", decimal=",")
    with pytest.warns(DataNotice, match=r"eu.csv: fields separated by ';' and decimals written with ',' \(1,5\)"):
        pd.testing.assert_frame_equal(read_table(tmp_path / "eu.csv"), frame)
    with pytest.warns(DataNotice):  # chunk by chunk, as scoring reads
        pd.testing.assert_frame_equal(pd.concat(iter_table(tmp_path / "eu.csv", chunksize=7), ignore_index=True), frame)
    (tmp_path / "commas.csv").write_text("a,b;c,d\n1,2;3,4\n5,6;7,8\n")  # commas, and ';' inside its fields
    assert read_table(tmp_path / "commas.csv").columns.tolist() == ["a", "b;c", "d"]
    frame.to_csv(tmp_path / "dots.csv", index=False, sep=";")  # ';' with decimal points
    with pytest.warns(DataNotice, match=r"dots.csv: fields separated by ';': read so"):
        pd.testing.assert_frame_equal(read_table(tmp_path / "dots.csv"), frame)


def test_a_constant_column_has_no_spread_and_is_named_in_a_note():
    """A column of 0.1 on every row: float32 sums leave it a standard deviation of 1.5e-8,
    which made its scale 2e-8 and any other value a million units away (the clip); 1.0
    gave scale 1. Now both give scale 1, and the fit's notes name the column."""
    rng = np.random.default_rng(0)
    for value in (0.1, 1.0):
        df = pd.DataFrame({"x": rng.normal(size=600), "c": value})
        pre = TabularPreprocessor().fit(df)
        assert pre.scale_[1] == 1.0 and pre.constant_ == ["c"]
        np.testing.assert_allclose(pre.transform(df.head(1).assign(c=value + 0.5))[0, 1], 0.5, rtol=1e-5)
        assert any("['c'] hold one value in every training row" in note for note in pre.notes())
    few = TabularPreprocessor().fit(pd.DataFrame(rng.normal(size=(8, 12))).add_prefix("x"))
    assert any(note.startswith("8 training rows for 12 columns") for note in few.notes())
    assert not any("training rows for" in note for note in TabularPreprocessor().fit(df).notes())


def test_a_file_saved_without_its_header_is_refused_and_numbers_that_name_columns_are_kept(tmp_path):
    (tmp_path / "data.csv").write_text("17.99,10.38,122.8\n20.57,17.77,132.9\n")  # the first row as the header
    with pytest.raises(DataError, match=r"its first line holds numbers \(17.99, 10.38, 122.8, ...\), not column "
                                        r"names.*header=None"):
        read_table(tmp_path / "data.csv")
    (tmp_path / "twice.csv").write_text("3,1,3\n4,1,5\n")  # whole numbers, one twice: not names either
    with pytest.raises(DataError, match="its first line holds numbers"):
        read_table(tmp_path / "twice.csv")
    for header in ("0,1,2", "400.5,410.5,420.5", "2019,2018,2017"):  # DataFrame(array)'s, wavelengths, years
        (tmp_path / "named.csv").write_text(f"{header}\n1.5,2.5,3.5\n")
        assert read_table(tmp_path / "named.csv").columns.tolist() == header.split(",")


@pytest.mark.parametrize("marker", ["?", "-", "N/A", "#DIV/0!"])
def test_missing_value_markers_among_numbers_are_named_with_the_fix(marker):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"k": ["a", "b"] * 20, "v": rng.normal(size=40).astype(object)})
    df.loc[::5, "v"] = marker  # 8 of 40 rows: too many for a few bad values, and not a category either
    message = (f"column 'v' marks missing numbers with {re.escape(repr(marker))} \\(8 rows\\): read them as missing "
               f"\\(na_values=\\[{re.escape(repr(marker))}\\], --na-values ")
    with pytest.raises(DataError, match=message):
        TabularPreprocessor().fit(df)
    pre = TabularPreprocessor().fit(df.assign(v=rng.normal(size=40)))
    with pytest.raises(DataError, match=r"marks missing numbers .*\(1 row\).*fill them \(impute='median'"):
        pre.transform(df.head(1))
    with pytest.raises(DataError, match=r"column 'v' should be numeric but holds a non-number \('big', data row 1\)$"):
        pre.transform(df.head(1).assign(v="big"))  # a word that marks nothing
    doors = pd.DataFrame({"doors": ["2", "4", marker, "4", "2"] * 8, "x": rng.normal(size=40)})  # a code's levels
    assert TabularPreprocessor().fit(doors).categories_["doors"] == sorted(["2", "4", marker])
    # the fix the message names: the markers read as missing, in training and scoring alike, saved with the model
    read = TabularPreprocessor(impute="median", na_values=[marker]).fit(df)
    assert read.numeric_ == ["v"] and read.categories_ == {"k": ["a", "b"]}
    again = TabularPreprocessor.from_dict(read.to_dict())
    z = again.transform(df.head(5))
    assert np.isfinite(z).all() and z[0, 0] == 0  # the first row's marker: the training median, scaled to 0
    with pytest.raises(DataError, match="NaN or inf .* a value marked missing"):
        TabularPreprocessor(na_values=[marker]).fit(df)
    with pytest.raises(ParameterError, match="na_values must be a list of strings, got '\\?'"):
        TabularPreprocessor(na_values="?")
    with pytest.raises(ModelFileError, match="na_values must be a list of strings"):
        TabularPreprocessor.from_dict({**read.to_dict(), "na_values": [1]})


def test_comment_lines_are_refused_and_a_separator_ending_every_line_adds_no_column(tmp_path):
    """Loggers start files with comment lines: pandas took the first for the header and failed
    on the real one ("Expected 1 fields in line 3"). Exports end each line with a separator:
    an empty column without a name was refused ("have no values ... --drop-cols")."""
    (tmp_path / "logged.csv").write_text("# exported by SensorHub v2.1\n# units: C\nx,y\n1,2\n")
    with pytest.raises(DataError, match=r"starts with 2 comment line\(s\) \('# exported by SensorHub v2.1'\): .*"
                                        r"skiprows=2"):
        read_table(tmp_path / "logged.csv")
    (tmp_path / "hash.csv").write_text("#id,a\n1,2\n")  # a header whose first name starts with '#'
    assert read_table(tmp_path / "hash.csv").columns.tolist() == ["#id", "a"]
    rng = np.random.default_rng(0)
    lines = ["x,y,"] + [f"{a:.3f},{b:.3f}," for a, b in rng.normal(size=(40, 2))]
    (tmp_path / "trailing.csv").write_text("\n".join(lines) + "\n")
    pre = TabularPreprocessor().fit(read_table(tmp_path / "trailing.csv"))
    assert pre.columns_ == ["x", "y"]
    assert any("['Unnamed: 2'] have no name and no values" in note for note in pre.notes())
    from aekit.apps.anomaly.light import unused_columns  # nor is it named at every scoring

    assert unused_columns(["x", "y", "Unnamed: 2"], ["x", "y"], None, None) == []
    assert unused_columns(["Unnamed: 0", "x", "y"], ["x", "y"], None, None) != []  # a saved index is said


def test_spaces_around_header_names_are_not_part_of_the_names(tmp_path):
    """'x , y ,z' named the columns 'x ' and 'y ': a file written 'x,y,z' then missed them."""
    (tmp_path / "spaced.csv").write_text("x , y ,z\n1,2,3\n4,5,6\n")
    assert read_table(tmp_path / "spaced.csv").columns.tolist() == ["x", "y", "z"]
    assert [c.columns.tolist() for c in iter_table(tmp_path / "spaced.csv", columns=["y"])] == [["y"]]
    (tmp_path / "clash.csv").write_text("x ,x\n1,2\n")
    with pytest.raises(DataError, match=r"duplicate column names \['x'\]"):
        read_table(tmp_path / "clash.csv")


def test_a_folder_of_parquet_files_is_one_table(tmp_path):
    """What Spark, Dask and to_parquet on a folder write: its parts in name order, beside
    the writer's markers; it was "is a directory, not a table", and training took it for
    a folder of images ("holds no images")."""
    from aekit.data.images import is_image_source
    from aekit.io import check_output_file
    from aekit.errors import OutputError

    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 3)), columns=list("abc"))
    folder = tmp_path / "out.parquet"
    folder.mkdir()
    for i, part in enumerate((df.iloc[:10], df.iloc[10:25], df.iloc[25:])):
        part.to_parquet(folder / f"part-{i:05d}.snappy.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    pd.testing.assert_frame_equal(read_table(folder), df)
    assert [len(c) for c in iter_table(folder, chunksize=8)] == [8, 2, 8, 7, 5]
    assert not is_image_source(folder)
    with pytest.raises(OutputError, match="inside the input folder .* take it for one of its parts"):
        check_output_file(folder / "scores.parquet", "anomaly-scores", inputs=[folder])
    df[["a", "c"]].to_parquet(folder / "part-00003.snappy.parquet", index=False)
    with pytest.raises(DataError, match=r"part-00003.snappy.parquet has other columns than the folder's first file "
                                        r"\(lacks \['b'\]\)"):
        read_table(folder)
    hive = tmp_path / "hive"
    (hive / "year=2024").mkdir(parents=True)
    df.to_parquet(hive / "year=2024" / "part-0.parquet")
    with pytest.raises(DataError, match=r"partitioned into folders \(year=2024, ...\)"):
        read_table(hive)


def test_a_parquet_output_keeps_the_first_chunks_types_or_names_the_column(tmp_path):
    from aekit import marks
    from aekit.data.table_output import table_output

    with table_output(tmp_path / "a.parquet", marks.ANOMALY_SCORES) as output:
        output.write_frame(pd.DataFrame({"id": [1, 2], "score": [0.5, 1.5]}))
        output.write_frame(pd.DataFrame({"id": [3], "score": [2]}))  # an int score column: cast to double
    back = pd.read_parquet(tmp_path / "a.parquet")
    assert back.score.tolist() == [0.5, 1.5, 2.0] and back.id.tolist() == [1, 2, 3]
    with pytest.raises(DataError, match="column 'id' reads as (large_)?string in chunk 2 of the output but as int64"):
        with table_output(tmp_path / "b.parquet", marks.ANOMALY_SCORES) as output:
            output.write_frame(pd.DataFrame({"id": [1, 2]}))
            output.write_frame(pd.DataFrame({"id": ["A7"]}))
    assert not (tmp_path / "b.parquet").exists()  # nothing half-written
