"""What the applications' file-level jobs share: training with checkpoints beside the model."""
from __future__ import annotations

import os
import shutil
from typing import Any

from ..distributed import is_main_process


def checkpoint_dir_for(model_dir: str | os.PathLike[str]) -> str:
    return f"{os.fspath(model_dir).rstrip('/')}.ckpt"


def fit_and_save(cls: type, X: Any, out: str | os.PathLike[str], resume: bool, params: dict[str, Any]) -> Any:
    """``cls(**params).fit(X)`` with per-epoch checkpoints beside ``out``; save the model,
    then drop the checkpoints (only once the model is safely on disk)."""
    checkpoints = checkpoint_dir_for(out)
    model = cls(checkpoint_dir=checkpoints, resume=resume, **params).fit(X)
    model.save(out)
    if is_main_process():
        shutil.rmtree(checkpoints, ignore_errors=True)
    return model
