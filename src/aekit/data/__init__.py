"""Files -> tensors and back: tables, images and audio (``data.audio``); text joins here."""
from .bundled import load_breast_cancer_frame
from .preprocess import TabularPreprocessor
from .tables import as_frame, iter_table, read_table, split_columns

__all__ = ["TabularPreprocessor", "as_frame", "iter_table", "read_table", "split_columns", "load_breast_cancer_frame"]
