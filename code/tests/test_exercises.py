"""The exercise system, held honest: the generated notebooks, their stubs, the chapters' solutions and the checkers.

For every checked coding exercise of every chapter (found in the chapter notebook itself):
its stub, as the exercise notebook writes it, gets "not written yet"; the chapter's solution
passes; a listed mistake, applied to the solution's source, is named by the checker. And the
exercise notebooks are up to date (regenerating them changes nothing), each has at least two
checked stubs, and their stubs and summary run without an error.
"""
from __future__ import annotations

import ast
import re
import contextlib
import io
from pathlib import Path

import nbformat
import pytest

from seqlab import check, exercises

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = exercises.chapter_paths()


def _checked():
    out = []
    for path in CHAPTERS:
        nb = nbformat.read(path, as_version=4)
        out += [pytest.param(path, ex, id=f"{path.stem}:{ex.checker}")
                for ex in exercises.checked_exercises(nb, exercises.chapter_id(path))]
    return out


CHECKED = _checked()

# A mistake per checker, applied to the chapter's solution as an edit of its source
# (old text, new text), and the words the checker must answer with.
MISTAKES = {
    "bigram_counts": ("(ids[:-1], ids[1:])", "(ids[1:], ids[:-1])", "transposed"),
    "bits_per_char": ("torch.log2(", "torch.log(", "nats"),
    "rnn_step": ("h_prev @ W_hh.T", "h_prev @ W_hh", "W_hh is transposed"),
    "rnn_forward": ("+ h @ W_hh.T", "+ h_0 @ W_hh.T", "state is not carried"),
    "bptt_step": ("delta_next @ W_hh)", "delta_next @ W_hh.T)", "untransposed"),
    "clip_grad_norm": ("min(1.0, max_norm / (total.item() + 1e-6))", "max_norm / (total.item() + 1e-6)", "scaled up"),
    "gru_step": ("return (1 - z) * n + z * h_prev", "return z * n + (1 - z) * h_prev", "swapped"),
    "lstm_step": ("torch.sigmoid(f) * c_prev + ", "", "cell state is not carried"),
    "additive_attention": ("torch.softmax(e, dim=-1)", "torch.softmax(e, dim=0)", "over the batch"),
    "alignment_accuracy": ("S - 1 - i", "S - i", "off by one"),
    "causal_attention": (" / math.sqrt(d_k)", "", "not scaled"),
    "multi_head_attention": ("math.sqrt(d // n_heads)", "math.sqrt(d)", "the model's width"),
    "pre_norm_block": ("x = x + attn(norm1(x))", "x = attn(norm1(x))", "residual is missing"),
    "layer_norm": ("unbiased=False", "unbiased=True", "unbiased"),
    "cross_attention": ("z @ W_v.T", "y @ W_v.T", "values come from y"),
    "masked_token_loss": ("(nll * mask).sum().item() / mask.sum().item()", "nll.mean().item()", "padded positions"),
    "apply_rope": ("torch.arange(offset, offset + T,", "torch.arange(0, T,", "offset is ignored"),
    "sinusoidal_encoding": ("[torch.sin(t * w), torch.cos(t * w)]", "[torch.cos(t * w), torch.sin(t * w)]",
                            "swapped"),
    "cached_attention_step": (" / q_t.shape[-1] ** 0.5", "", "not scaled"),
    "linear_scan": ("Bs[:, 0] + A[:, 0] * h_0", "Bs[:, 0]", "h_0 is ignored"),
    "mingru_step": ("return (1 - z) * h + z * h_tilde", "return z * h + (1 - z) * h_tilde", "weighs the candidate"),
    "log_space_scan": ("torch.exp(a_star) * h0[:, None] + ", "", "initial state"),
    "forward_flops": (" + 4 * n_layers * n_ctx * d", "", "n_ctx term is missing"),
    "fit_power_law": ("-slope.item()", "slope.item()", "wrong sign"),
    "prefix_matching_score": ("t - delta + 1]", "t - delta]", "earlier occurrence itself"),
    "icl_score": ("loss[:, t_late] - loss[:, t_early]", "loss[:, t_early] - loss[:, t_late]", "sign is flipped"),
    "linear_attention_recurrent": ("F.elu(q) + 1, F.elu(k) + 1", "q, k", "feature map"),
    "linear_attention_parallel": (".tril()", ".tril(-1)", "diagonal is masked too"),
    "zoh_discretize": ("torch.exp(log_dt)[:, None] * A", "log_dt[:, None] * A", "log_dt is log"),
    "s4d_kernel": ("return 2 * (", "return (", "factor 2 is missing"),
    "selective_scan": (", C) + D * u", ", C)", "skip term is missing"),
    "rglru_step": ("torch.sqrt(1 - a_t ** 2) * ", "", "√(1 − a_t²)"),
    "sliding_window_attention": ("(i - j < window)", "(i - j <= window)", "off by one: the window holds W keys"),
    "kv_cache_bytes": ("return 2 * T", "return T", "factor 2"),
    "pareto_front": ("return ~(no_worse & better)", "return (no_worse & better)", "beaten models"),
}


def _imports(path: Path) -> dict:
    """A namespace holding what the notebook imports (its import statements, run alone)."""
    nb = nbformat.read(path, as_version=4)
    namespace: dict = {"__name__": "__exercise__"}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # a cell with IPython syntax (the Colab cell's %pip)
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                exec(compile(ast.Module([node], []), str(path), "exec"), namespace)
    return namespace


def _define(source: str, name: str, namespace: dict):
    local = dict(namespace)
    exec(compile(source, f"<{name}>", "exec"), local)
    return local[name]


def test_every_chapter_has_two_checked_exercises():
    per_chapter = {exercises.chapter_id(p): 0 for p in CHAPTERS}
    for param in CHECKED:
        path, ex = param.values
        per_chapter[ex.chapter] += 1
    assert all(n >= 2 for n in per_chapter.values()), per_chapter
    # every checked exercise has a mistake to apply, and every checker is used by its own chapter
    assert {p.values[1].checker for p in CHECKED} <= set(MISTAKES)
    for param in CHECKED:
        assert getattr(check, param.values[1].checker).chapter == param.values[1].chapter


def test_every_registered_checker_is_an_exercise_of_its_chapter():
    used = {(p.values[1].chapter, p.values[1].checker) for p in CHECKED}
    registered = {(c.chapter, c.__name__) for c in check.checkers()}
    assert registered <= used, f"checkers no chapter uses: {sorted(registered - used)}"


@pytest.mark.parametrize("path, ex", CHECKED)
def test_the_stub_is_not_written_yet(path, ex):
    stub = _define(exercises.stub_source(ex).rsplit("\n\n\n", 1)[0], ex.function, _imports(path))
    result = getattr(check, ex.checker)(stub)
    assert not result and result.status == "not written yet" and "not written yet" in result.message, result
    # and a body of `...` (returns None) reads the same, never a traceback
    result = getattr(check, ex.checker)(lambda *a, **k: None)
    assert result.status == "not written yet", result


@pytest.mark.parametrize("path, ex", CHECKED)
def test_the_chapters_solution_passes(path, ex):
    result = getattr(check, ex.checker)(_define(ex.source, ex.function, _imports(path)))
    assert result and result.status == "pass", result


@pytest.mark.parametrize("path, ex", CHECKED)
def test_a_mistake_in_the_solution_is_named(path, ex):
    old, new, words = MISTAKES[ex.checker]
    assert old in ex.source, f"the solution of {ex.label} changed: update MISTAKES[{ex.checker!r}]"
    wrong = _define(ex.source.replace(old, new, 1), ex.function, _imports(path))
    result = getattr(check, ex.checker)(wrong)
    assert not result and result.status == "fail" and words in result.message, result


@pytest.mark.parametrize("bad", [None, 3, "rnn_forward"])
def test_misuse_raises_a_type_error(bad):
    with pytest.raises(TypeError, match="expected a function"):
        check.rnn_forward(bad)


def test_a_wrong_answer_is_reported_not_raised():
    result = check.layer_norm(lambda x, gamma, beta, eps=1e-5: 1 / 0)
    assert not result and "ZeroDivisionError" in result.message
    result = check.pareto_front(lambda q, c: "front")
    assert not result and "should return a torch.Tensor" in result.message


def test_the_stub_docstring_states_the_contract():
    for param in CHECKED:
        _, ex = param.values
        source = exercises.stub_source(ex)
        tree = ast.parse(source)
        fn = tree.body[0]
        assert isinstance(fn, ast.FunctionDef) and fn.name == ex.function
        doc = ast.get_docstring(fn)
        assert doc and not re.search(r"\bfn\(", doc) and "Chapter" not in doc.split("\n")[0], doc
        assert doc.startswith(f"`{ex.function}("), doc  # the contract opens with the call the learner writes
        assert ast.unparse(tree.body[-1]) == f"{ex.call}({ex.function})"


def test_summary_lists_pass_not_written_and_fail():
    check.sinusoidal_encoding(lambda T, d: (_ for _ in ()).throw(NotImplementedError()))
    check.apply_rope(lambda x, offset: x)
    text = repr(check.summary(8))
    assert "0 of 2" in text and "sinusoidal_encoding: not written yet" in text and "apply_rope: fail —" in text
    check.sinusoidal_encoding(lambda T, d: check.ch08._sinusoidal_reference(T, d))
    assert "sinusoidal_encoding: pass" in repr(check.summary(8)) and "1 of 2" in repr(check.summary(8))
    assert "✏️" in check.summary(8)._repr_markdown_() or "❌" in check.summary(8)._repr_markdown_()
    with pytest.raises(ValueError):
        check.checkers("99")


def test_exercise_notebooks_are_up_to_date():
    wanted = exercises.build()
    assert sorted(wanted) == sorted(p.name for p in CHAPTERS)
    stale = [name for name, text in wanted.items()
             if not (exercises.EXERCISES / name).is_file() or (exercises.EXERCISES / name).read_text(encoding="utf-8") != text]
    assert not stale, f"run `make exercises`: out of date: {stale}"
    extra = sorted(p.name for p in exercises.EXERCISES.glob("*.ipynb") if p.name not in wanted)
    assert not extra, f"exercise notebooks without a chapter: {extra}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_exercise_notebook_is_the_chapter_with_stubs(path):
    chapter = nbformat.read(path, as_version=4)
    nb = nbformat.read(exercises.EXERCISES / path.name, as_version=4)
    for cell in nb.cells:  # committed stripped
        assert cell.cell_type != "code" or (cell.outputs == [] and cell.execution_count is None)
        assert exercises.SOLUTION_TAG not in cell.get("metadata", {}).get("tags", []), "a solution was left in"
    stubs = [c for c in nb.cells if c.get("id", "").startswith("stub-")]
    assert len(stubs) >= 2
    assert nb.cells[-1].source == f'check.summary("{exercises.chapter_id(path)}")'
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{solution" not in text and "{exercise}" not in text  # directives turned into plain Markdown
    # every code cell outside the solutions is the chapter's own, in the same order
    kept = [c.source for c in chapter.cells if c.cell_type == "code"
            and exercises.SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])]
    ours = [c.source for c in nb.cells if c.cell_type == "code" and not c.get("id", "").startswith(("stub-", "try-"))][:-1]
    assert ours == kept


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_stubs_and_the_summary_run(path):
    # The rest of an exercise notebook is the chapter's own code (the test above), which the
    # notebook tests run; here its stubs and its summary run on the notebook's imports.
    nb = nbformat.read(exercises.EXERCISES / path.name, as_version=4)
    namespace = _imports(exercises.EXERCISES / path.name)
    shown = []
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.get("id", "").startswith("stub-") or cell.get("id") == "summary"):
            tree = ast.parse(cell.source)
            body, last = tree.body[:-1], tree.body[-1]
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(ast.Module(body, []), "<cell>", "exec"), namespace)
                shown.append(eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace))
    *results, summary = shown
    assert results and all(r.status == "not written yet" for r in results), results
    assert summary.passed == 0 and {status for _, status, _ in summary.rows} == {"not written yet"}, summary


def test_the_book_links_each_chapter_to_its_exercise_notebook():
    # book/_ext/exercise_links.py, on a chapter's doctree, without building the book
    import importlib.util
    import types

    from docutils import nodes
    from docutils.utils import new_document
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser

    spec = importlib.util.spec_from_file_location("exercise_links", ROOT / "book" / "_ext" / "exercise_links.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    options = {"repository_url": "https://github.com/owner/repo", "repository_branch": "main",
               "launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com",
                                  "notebook_interface": "jupyterlab"}}
    app = types.SimpleNamespace(config=types.SimpleNamespace(html_theme_options=options))
    doc = new_document("page", get_default_settings(Parser))
    section = nodes.section(ids=["exercises"])
    section += nodes.title(text="Exercises")
    section += nodes.paragraph(text="Exercise 1 ...")
    doc += section
    ext.add_links(app, doc, "chapters/07b_encoder_decoder")
    links = {r["reftitle"]: r["refuri"] for r in doc.findall(nodes.reference)}
    assert links == {
        "Try the exercises on Binder": "https://mybinder.org/v2/gh/owner/repo/main?urlpath=lab/tree/exercises/07b_encoder_decoder.ipynb",
        "Try the exercises on Colab": "https://colab.research.google.com/github/owner/repo/blob/main/exercises/07b_encoder_decoder.ipynb"}
    assert section.index(next(iter(section.findall(nodes.reference))).parent) == 1  # right under the heading
    other = new_document("page", get_default_settings(Parser))
    ext.add_links(app, other, "book/how_to_run")
    assert not list(other.findall(nodes.reference))  # only chapter pages


def test_gradients_are_compared_and_a_cut_graph_is_named():
    import torch.nn.functional as F

    good = check.layer_norm(lambda x, gamma, beta, eps=1e-5: F.layer_norm(x, (x.shape[-1],), gamma, beta, eps))
    assert good and "gradients" in good.message
    detached = check.layer_norm(lambda x, gamma, beta, eps=1e-5: F.layer_norm(x, (x.shape[-1],), gamma, beta, eps).detach())
    assert not detached and "autograd" in detached.message, detached

    def half_detached(x, gamma, beta, eps=1e-5):  # the statistics detached: right values, wrong gradient
        mean, var = x.mean(-1, keepdim=True).detach(), x.var(-1, keepdim=True, unbiased=False).detach()
        return (x - mean) / (var + eps).sqrt() * gamma + beta

    r = check.layer_norm(half_detached)
    assert not r and "gradient with respect to" in r.message, r


def test_each_listed_mistake_is_named_by_its_own_message(monkeypatch):
    # every (wrong function, message) a checker lists, passed to the checker as the learner's
    # function, gets that message: no listed mistake hides behind another or goes unnamed
    import importlib

    from seqlab.check import core

    listed = {}

    def recording(name, learner, reference, cases, *, hints=(), mistakes=(), **kw):
        listed.setdefault(name, list(mistakes))
        return core.compare(name, learner, reference, cases, hints=hints, mistakes=mistakes, **kw)

    for i in range(1, 16):
        monkeypatch.setattr(importlib.import_module(f"seqlab.check.ch{i:02d}"), "compare", recording)
    wrapped = {"zoh_discretize"}  # its mistakes return packed tensors, not the learner's pair
    checked = 0
    for c in check.checkers():
        c(lambda *a: None)
        if c.__name__ in wrapped:
            continue
        for wrong, message in listed.get(c.__name__, []):
            result = c(wrong)
            assert not result and message in result.message, (c.__name__, message, result.message)
            checked += 1
    assert checked > 60


def test_tag_solutions_restores_the_tags_and_nothing_else(tmp_path):
    import json

    original = CHAPTERS[1].read_text(encoding="utf-8")
    nb = json.loads(original)
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if exercises.SOLUTION_TAG in tags:
            tags.remove(exercises.SOLUTION_TAG)
            if not tags:
                del cell["metadata"]["tags"]
    copy = tmp_path / CHAPTERS[1].name
    copy.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="tag it 'solution'"):
        exercises.checked_exercises(nbformat.read(copy, as_version=4), "2")
    assert exercises.tag_solutions(copy) >= 2
    assert copy.read_text(encoding="utf-8") == original
    assert exercises.tag_solutions(copy) == 0


def test_weights_copied_into_a_module_are_named():
    import torch

    def via_module(x_t, h_prev, c_prev, W_x, W_h, b_x, b_h):  # right values, but W_x gets no gradient
        cell = torch.nn.LSTMCell(W_x.shape[1], h_prev.shape[1]).double()
        with torch.no_grad():
            for p, w in zip(cell.parameters(), (W_x, W_h, b_x, b_h)):
                p.copy_(w)
        return cell(x_t, (h_prev, c_prev))

    result = check.lstm_step(via_module)
    assert not result and "no gradient reaches `W_x`" in result.message, result
