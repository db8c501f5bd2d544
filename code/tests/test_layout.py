"""The package's layout: the tests import the checkout they live in, and the
package's internal names read as what they are (chapter 1 introduces ``seqlab``)."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
import torch

import seqlab

CODE = Path(__file__).resolve().parents[1]


def test_tests_import_the_seqlab_of_their_own_checkout():
    # pytest's `pythonpath` (code/pyproject.toml) puts this checkout's code/ first on sys.path,
    # so a copy of the repository tests its own package even when an editable install points elsewhere
    assert Path(seqlab.__file__).resolve() == CODE / "seqlab" / "__init__.py", seqlab.__file__


def test_tasks_live_in_data_and_the_generator_helper_in_config():
    from seqlab import config, data, models

    assert data.ReverseTask.__module__ == "seqlab.data.tasks"
    assert models.ReverseTask is data.ReverseTask  # chapter 5 imports it from seqlab.models
    assert config.make_generator.__module__ == "seqlab.config"
    assert data.make_generator is config.make_generator
    g = config.make_generator(5)
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(5)))
    with pytest.raises(TypeError, match="generator must be a torch.Generator, an int seed or None, got str"):
        config.make_generator("5")


def test_the_validation_module_is_not_imported_as_check():
    # `check` reads as the exercise checkers (seqlab.check); the argument checks are `validate`
    old = re.compile(r"^from \.+ import _validate as check$", re.M)
    users = {str(p.relative_to(CODE / "seqlab")) for p in (CODE / "seqlab").rglob("*.py") if old.search(p.read_text())}
    assert not users, f"import seqlab._validate as `validate`, not `check`, in {sorted(users)}"


# ---------------------------------------------------------------- every public object names its chapter
ROOT = CODE.parent
CHAPTER = re.compile(r"\b[Cc]hapters? \d+")


def documented_modules() -> list[str]:
    """The modules book/api.md documents member by member (``:members:``)."""
    text = (ROOT / "book" / "api.md").read_text(encoding="utf-8")
    return [m.group(1) for m in re.finditer(r"^\.\. automodule:: (\S+)\n((?:   :.*\n)*)", text, flags=re.M)
            if ":members:" in m.group(2)]


def public_objects() -> list[tuple[str, object]]:
    """Every public class and function defined in (not imported into) a documented module."""
    out = []
    for name in documented_modules():
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if not attr.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj)) \
                    and obj.__module__ == name:
                out.append((f"{name}.{attr}", obj))
    return out


def test_the_api_walk_finds_the_package():
    names = {n for n, _ in public_objects()}
    assert len(names) > 100
    assert {"seqlab.config.scale", "seqlab.models.rnn.RNN", "seqlab.data.tasks.ReverseTask",
            "seqlab.models.sampling.sample_next", "seqlab.check.core.compare"} <= names


def test_every_public_object_names_the_chapter_that_introduces_it():
    missing = [name for name, obj in public_objects() if not CHAPTER.search(inspect.getdoc(obj) or "")]
    assert not missing, f"name the chapter ('chapter N') in the docstring of: {missing}"
