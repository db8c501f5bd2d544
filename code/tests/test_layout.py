"""The package's layout: the tests import the checkout they live in, and the
package's internal names read as what they are (chapter 1 introduces ``seqlab``)."""
from __future__ import annotations

from pathlib import Path

import seqlab

CODE = Path(__file__).resolve().parents[1]


def test_tests_import_the_seqlab_of_their_own_checkout():
    # pytest's `pythonpath` (code/pyproject.toml) puts this checkout's code/ first on sys.path,
    # so a copy of the repository tests its own package even when an editable install points elsewhere
    assert Path(seqlab.__file__).resolve() == CODE / "seqlab" / "__init__.py", seqlab.__file__
