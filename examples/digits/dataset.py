"""The one fixed split shared by train.py and evaluate.py, so evaluation never sees training rows."""

from __future__ import annotations

import hashlib
from typing import Any

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_SIZE = 0.25
SEED = 0


def split() -> tuple[Any, Any, Any, Any]:
    """(X_train, X_test, y_train, y_test) of sklearn's bundled 8x8 digits, stratified and seeded."""
    features, labels = load_digits(return_X_y=True)
    return tuple(train_test_split(features, labels, test_size=TEST_SIZE, random_state=SEED, stratify=labels))


def data_version() -> str:
    """What the model learns from, by content: the bundled data and the split's parameters, hashed. A new scikit-learn
    that changed the data, or a new split, is a new data version; the same bytes always the same one."""
    features, labels = load_digits(return_X_y=True)
    digest = hashlib.sha256(f"{TEST_SIZE}:{SEED}:{features.dtype}:{labels.dtype}".encode())
    digest.update(features.tobytes())
    digest.update(labels.tobytes())
    return f"sklearn-digits:{digest.hexdigest()[:16]}"
