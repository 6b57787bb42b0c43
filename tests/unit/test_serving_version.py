"""The scikit-learn that trains a model is the one that serves it on Vertex AI.

Vertex's prebuilt sklearn container loads `model.joblib` with its own scikit-learn minor version; a model pickled by
another minor may fail to load or predict differently. The training image installs the example's requirements.txt
(examples/digits/Dockerfile), so its pin and the default serving image both follow SKLEARN_SERVING_VERSION.
"""

from __future__ import annotations

import re
from pathlib import Path

from relaunch import settings

ROOT = Path(__file__).resolve().parents[2]
PREBUILT = re.compile(r"^us-docker\.pkg\.dev/vertex-ai/prediction/sklearn-cpu\.(\d+)-(\d+):latest$")


def serving_version() -> str:
    """The scikit-learn minor of the default serving image."""
    image = settings.Settings.model_fields["vertex_serving_image"].default
    match = PREBUILT.match(image)
    assert match is not None, f"not a prebuilt sklearn serving image: {image}"
    return f"{match[1]}.{match[2]}"


def test_the_examples_training_image_installs_the_scikit_learn_minor_that_serves_it() -> None:
    lines = (ROOT / "examples" / "digits" / "requirements.txt").read_text().splitlines()
    (pin,) = [line.split("#")[0].strip() for line in lines if line.lower().startswith("scikit-learn")]
    assert pin == f"scikit-learn=={serving_version()}.*", "an open range installs whatever is newest"


def test_one_constant_names_that_version() -> None:
    assert serving_version() == getattr(settings, "SKLEARN_SERVING_VERSION", None)
