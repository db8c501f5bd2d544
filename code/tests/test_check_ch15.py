from seqlab import check
from seqlab.check.ch15 import _reference


def test_kv_cache_checker_accepts_the_formula():
    assert check.kv_cache_bytes(_reference)
    assert check.kv_cache_bytes(lambda T, n_layers, d_model, bytes_per_number=4: 2 * T * n_layers * d_model * bytes_per_number)


def test_kv_cache_checker_names_each_classic_mistake():
    r = check.kv_cache_bytes(lambda *a: _reference(*a, kv=1))
    assert not r and "factor 2" in r.message
    r = check.kv_cache_bytes(lambda *a: _reference(*a, layers=False))
    assert not r and "n_layers" in r.message
    r = check.kv_cache_bytes(lambda *a: _reference(*a, width=False))
    assert not r and "d_model" in r.message
    r = check.kv_cache_bytes(lambda *a: _reference(*a) + 1)
    assert not r
    r = check.kv_cache_bytes(lambda T, n_layers: 0)
    assert not r and "raised" in r.message
