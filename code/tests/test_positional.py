"""Positional encodings (chapter 8), each checked against a second formulation.

Sinusoids against the formula written as a loop; RoPE against the complex-number
form (pair i of position m times e^{i m omega_i}) and by its defining property,
that the score of a rotated query/key pair depends only on their offset; ALiBi's
slopes against the values in Press et al. (2022) and its bias against a loop.
"""
import math
import re

import pytest
import torch

from seqlab.models import (LearnedPositions, SinusoidalPositions, alibi_bias, alibi_slopes, apply_rope,
                           scaled_dot_product_attention, sinusoidal_encoding)


def test_sinusoids_equal_the_formula_as_a_loop():
    T, d, offset = 7, 6, 3
    P = sinusoidal_encoding(T, d, offset=offset, dtype=torch.float64)
    for t in range(T):
        for i in range(d // 2):
            angle = (t + offset) / 10000 ** (2 * i / d)
            assert P[t, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-12)
            assert P[t, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-12)


def test_sinusoid_of_a_shifted_position_is_a_fixed_linear_map_of_the_original():
    """Vaswani et al.'s motivation: p_{t+k} = M_k p_t with M_k independent of t (a rotation per pair)."""
    P = sinusoidal_encoding(40, 8, dtype=torch.float64)
    k = 5
    M = torch.linalg.lstsq(P[:20], P[k:20 + k], driver="gelsd").solution  # fitted on positions 0..19
    torch.testing.assert_close(P[20:35] @ M, P[20 + k:35 + k], atol=1e-8, rtol=0)  # holds at 20..34 too


def test_absolute_modules_add_their_table():
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(SinusoidalPositions(8)(x, offset=2) - x, sinusoidal_encoding(5, 8, offset=2).expand(2, 5, 8))
    learned = LearnedPositions(10, 8)
    torch.testing.assert_close(learned(x, offset=3) - x, learned.P.weight[3:8].expand(2, 5, 8))
    with pytest.raises(ValueError, match="positions up to 10"):
        learned(x, offset=6)
    with pytest.raises(ValueError, match="even"):
        SinusoidalPositions(7)


def test_sinusoidal_positions_scale_multiplies_the_table_and_is_validated():
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    P = sinusoidal_encoding(5, 8, offset=2, dtype=torch.float64)
    assert torch.equal(SinusoidalPositions(8, scale=1.0)(x, offset=2), SinusoidalPositions(8)(x, offset=2))   # today's output
    torch.testing.assert_close(SinusoidalPositions(8, scale=0.3)(x, offset=2) - x, 0.3 * P.expand(2, 5, 8))
    m = SinusoidalPositions(8)
    m.scale = 2.5                                                          # settable after construction, as the study does
    torch.testing.assert_close(m(x, offset=2) - x, 2.5 * P.expand(2, 5, 8))
    assert "scale=2.5" in repr(m) and "scale=1" in repr(SinusoidalPositions(8))
    for bad in (0, -1.0, float("nan"), float("inf"), "1", True, None):
        with pytest.raises(ValueError, match=f"scale must be a positive finite number, got {re.escape(repr(bad))}"):
            SinusoidalPositions(8, scale=bad)



def rope_complex(x, offset=0, base=10000.0):
    """The independent form: pairs as complex numbers z_i = x_{2i} + i x_{2i+1}, times e^{i m omega_i}."""
    T, d = x.shape[-2], x.shape[-1]
    m = torch.arange(offset, offset + T, dtype=torch.float64)
    omega = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    rot = torch.polar(torch.ones(T, d // 2, dtype=torch.float64), m[:, None] * omega)  # (T, d/2)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], d // 2, 2).contiguous())
    return torch.view_as_real(z * rot).reshape(x.shape).to(x.dtype)


@pytest.mark.parametrize("shape, offset", [((5, 4), 0), ((2, 3, 7, 8), 11), ((1, 1, 2), 0)])
def test_rope_equals_complex_rotation_and_keeps_norms(shape, offset):
    x = torch.randn(*shape, dtype=torch.float64)
    y = apply_rope(x, offset)
    torch.testing.assert_close(y, rope_complex(x, offset))
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(apply_rope(x, 0)[..., 0, :], x[..., 0, :])  # position 0 is not rotated


def test_rope_scores_depend_only_on_the_offset():
    """(R_m q) . (R_n k) = q . R_{n-m} k: shifting both positions by s changes nothing."""
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(16, generator=g, dtype=torch.float64), torch.randn(16, generator=g, dtype=torch.float64)

    def score(m, n):
        qm = apply_rope(q.expand(m + 1, 16).clone(), 0)[m]  # q placed at position m
        kn = apply_rope(k.expand(n + 1, 16).clone(), 0)[n]
        return (qm @ kn).item()

    for m, n in [(3, 1), (10, 10), (2, 7), (40, 0)]:
        for s in (1, 5, 100):
            assert score(m + s, n + s) == pytest.approx(score(m, n), abs=1e-10)
    assert score(3, 1) != pytest.approx(score(3, 2), abs=1e-6)  # but it does depend on the offset
    # and the same through apply_rope's offset argument, on a whole sequence
    Q, K = torch.randn(6, 8, dtype=torch.float64), torch.randn(6, 8, dtype=torch.float64)
    torch.testing.assert_close(apply_rope(Q, 0) @ apply_rope(K, 0).T, apply_rope(Q, 50) @ apply_rope(K, 50).T)


def test_alibi_slopes_are_the_papers():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(h + 1) for h in range(8)]))
    torch.testing.assert_close(alibi_slopes(4), torch.tensor([2.0 ** -(2 * (h + 1)) for h in range(4)]))
    # not a power of two: the four slopes of H=4, then every other slope of H=8
    torch.testing.assert_close(alibi_slopes(6), torch.tensor([2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8, 2.0 ** -1, 2.0 ** -3]))


def test_alibi_bias_equals_a_loop_and_penalises_distance():
    H, T_q, T_k, offset = 3, 2, 6, 4
    bias = alibi_bias(T_q, T_k, H, offset=offset, dtype=torch.float64)
    s = alibi_slopes(H).double()
    for h in range(H):
        for i in range(T_q):
            for j in range(T_k):
                assert bias[h, i, j].item() == pytest.approx(-s[h].item() * (offset + i - j))
    # with equal q.k, ALiBi puts most weight on the nearest key
    q, k, v = torch.ones(1, 1, 4), torch.ones(1, 5, 4), torch.eye(5)[None, :, :4]
    _, w = scaled_dot_product_attention(q, k, v, bias=alibi_bias(1, 5, 1, offset=4)[0][None])
    assert w[0, 0].argmax() == 4 and (w[0, 0].diff() > 0).all()


def test_bad_input():
    with pytest.raises(ValueError, match="even"):
        apply_rope(torch.randn(3, 5))
    with pytest.raises(ValueError, match="at least 2-dimensional"):
        apply_rope(torch.randn(4))
    with pytest.raises(TypeError, match="floating-point"):
        apply_rope(torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="offset must be >= 0"):
        apply_rope(torch.randn(2, 4), offset=-1)
    with pytest.raises(ValueError, match="base must be a number > 1"):
        sinusoidal_encoding(3, 4, base=1)
    with pytest.raises(TypeError, match="n_heads must be an int"):
        alibi_slopes(2.0)
    with pytest.raises(ValueError, match="bias must have shape"):
        scaled_dot_product_attention(torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(2, 3, 4),
                                     bias=torch.zeros(3, 3, 1))
    with pytest.raises(TypeError, match="dtype of q"):
        scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4),
                                     bias=torch.zeros(3, 3, dtype=torch.float64))
