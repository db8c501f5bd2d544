import torch

from seqlab import check
from seqlab.check.ch13 import _zoh_reference
from seqlab.ops import ssm


def test_zoh_checker_accepts_the_library_discretisation():
    def via_seqlab(log_dt, A, B):
        log_A_real, A_imag = torch.log(-A.real), A.imag
        return ssm.s4d_discretize(log_dt, log_A_real, A_imag, torch.view_as_real(B))

    assert check.zoh_discretize(via_seqlab)
    assert check.zoh_discretize(_zoh_reference)


def test_zoh_checker_names_each_classic_mistake():
    def euler(log_dt, A, B):
        dt = torch.exp(log_dt)[:, None]
        return 1 + dt * A, dt * B

    r = check.zoh_discretize(euler)
    assert not r and "Euler" in r.message
    def log_dt_as_dt(log_dt, A, B):
        A_bar = torch.exp(log_dt[:, None] * A)
        return A_bar, (A_bar - 1) / A * B

    r = check.zoh_discretize(log_dt_as_dt)
    assert not r and "exp(log_dt)" in r.message
    r = check.zoh_discretize(lambda *a: (_zoh_reference(*a)[0], _zoh_reference(*a)[1] * 1.01))
    assert not r and "differs at index (1," in r.message
    r = check.zoh_discretize(lambda *a: _zoh_reference(*a)[0])
    assert not r and "pair" in r.message


def test_selective_scan_checker_accepts_every_form_of_the_library():
    for form in ("loop", "parallel", "chunked", "blocked", "logspace"):
        f = getattr(ssm, f"selective_scan_{form}")
        assert check.selective_scan(lambda *a, f=f: f(*a)[0]), form


def test_selective_scan_checker_names_each_classic_mistake():
    from seqlab.check.ch13 import _selective_reference as ref
    for kw, words in [({"skip": False}, "skip term"), ({"delta_input": False}, "Δ_t is missing"),
                      ({"own_decay": True}, "decayed at its own step"), ({"shift": True}, "off by one")]:
        r = check.selective_scan(lambda *a, kw=kw: ref(*a, **kw))
        assert not r and words in r.message, (kw, r.message)
    r = check.selective_scan(lambda *a: ssm.selective_scan_loop(*a)[0] * 1.001)   # close, but not equal
    assert not r and "differs" in r.message
