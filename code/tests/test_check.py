import pytest
import torch

from seqlab import check


def reference_counts(ids, V):
    C = torch.zeros(V, V, dtype=torch.long)
    for a, b in zip(ids[:-1].tolist(), ids[1:].tolist()):
        C[a, b] += 1
    return C


def test_a_correct_solution_passes():
    r = check.bigram_counts(reference_counts)
    assert r.ok and bool(r) and "all 4 cases" in repr(r)


def test_each_mistake_gets_a_precise_message():
    def not_done(ids, V):
        raise NotImplementedError

    assert "not written yet" in check.bigram_counts(not_done).message
    assert "transposed" in check.bigram_counts(lambda ids, V: reference_counts(ids, V).T).message
    assert "probabilities" in check.bigram_counts(
        lambda ids, V: (lambda C: C / C.sum(1, keepdim=True).clamp(min=1))(reference_counts(ids, V).float())
    ).message
    r = check.bigram_counts(lambda ids, V: reference_counts(ids, V)[: V - 1])
    assert not r and "shape" in r.message
    r = check.bigram_counts(lambda ids, V: reference_counts(ids, V).tolist())
    assert "should return a torch.Tensor" in r.message

    def off_by_one(ids, V):
        C = reference_counts(ids, V)
        C[0, 0] += 1
        return C

    r = check.bigram_counts(off_by_one)
    assert not r and "differs at index (0, 0)" in r.message and "ids=[0, 1, 0, 1, 1]" in r.message
    r = check.bigram_counts(lambda ids, V: 1 / 0)
    assert "ZeroDivisionError" in r.message
    with pytest.raises(TypeError, match="expected a function"):
        check.bigram_counts(42)
def test_bits_per_char_checker():
    good = lambda p, t: (-torch.log2(p[torch.arange(len(t)), t])).mean().item()
    assert check.bits_per_char(good)
    nats = lambda p, t: (-torch.log(p[torch.arange(len(t)), t])).mean().item()
    assert "nats" in check.bits_per_char(nats).message
    assert "should return a number" in check.bits_per_char(lambda p, t: "1.0").message


def test_each_checker_module_names_every_checker_it_defines_in_its_first_line():
    """The API page shows each module's first line: it lists every public checker, none missing, none extra."""
    import ast
    import re
    from pathlib import Path

    import seqlab.check
    for path in sorted(Path(seqlab.check.__file__).parent.glob("ch*.py")):
        tree = ast.parse(path.read_text())
        defined = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
        first = ast.get_docstring(tree).splitlines()[0]
        assert first.startswith("Exercise checkers of chapter "), path.name
        assert re.findall(r"``(\w+)``", first) == defined, (path.name, first, defined)
