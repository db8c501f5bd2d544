import torch

from seqlab import check
from seqlab.check.ch14 import _reference
from seqlab.ops import rglru


def test_rglru_checker_accepts_the_library_step():
    assert check.rglru_step(lambda x_t, h, *p: rglru.rglru_step(x_t, *p, state=h)[1])
    assert check.rglru_step(_reference)


def test_rglru_checker_names_each_classic_mistake():
    r = check.rglru_step(lambda *a: _reference(*a, normalise="none"))
    assert not r and "√(1 − a_t²)" in r.message
    r = check.rglru_step(lambda *a: _reference(*a, normalise="one_minus"))
    assert not r and "not 1 − a_t" in r.message
    r = check.rglru_step(lambda *a: _reference(*a, softplus=False))
    assert not r and "softplus" in r.message
    r = check.rglru_step(lambda *a: _reference(*a, c=1.0))
    assert not r and "c = 8" in r.message
    r = check.rglru_step(lambda *a: _reference(*a) * 1.01)
    assert not r and "differs" in r.message
    r = check.rglru_step(lambda *a: (_reference(*a),))
    assert not r
