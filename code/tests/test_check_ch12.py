from seqlab import check
from seqlab.check.ch12 import _reference
from seqlab.ops import linear_attention as la


def test_linear_attention_checker_accepts_every_library_form():
    for form in (la.linear_attention_loop, la.linear_attention_parallel, la.linear_attention_chunked):
        assert check.linear_attention_recurrent(lambda q, k, v, f=form: f(q, k, v, chunk=2)[0])


def test_linear_attention_checker_names_each_classic_mistake():
    for kwargs, words in [(dict(normalize=False), "normaliser"), (dict(feature="identity"), "feature map"),
                          (dict(off_by_one=True), "before reading")]:
        r = check.linear_attention_recurrent(lambda q, k, v, kw=kwargs: _reference(q, k, v, **kw))
        assert not r and words in r.message, (kwargs, r.message)
    r = check.linear_attention_recurrent(lambda q, k, v: _reference(q, k, v)[:, :-1])
    assert not r and "shape" in r.message
