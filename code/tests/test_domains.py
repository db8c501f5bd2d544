import pytest
import torch

from seqlab.data import DNA, chirp, decode_dna, dna_with_motif, seasonal_series


def test_seasonal_series_shape_and_period():
    x = seasonal_series(4, 96, period=24.0, noise=0.0, generator=0)
    assert x.shape == (4, 96, 1)
    # without noise, x_{t+P} - x_t is the same for every t (the linear trend times P)
    x = seasonal_series(1, 96, period=24.0, noise=0.0, generator=1)[0, :, 0]
    d = x[24:] - x[:-24]
    assert torch.allclose(d, d[0].expand_as(d), atol=1e-4)


def test_chirp():
    a = chirp(seconds=0.25, sample_rate=8000)
    assert a.shape == (1, 2000, 1) and a.abs().max() <= 1.0


def test_dna_motif_is_planted_where_reported():
    x, has, where = dna_with_motif(50, 40, motif="TATAAT", rate=0.5, generator=0)
    assert x.shape == (50, 40) and 0 < has.sum() < 50
    for i in range(50):
        if has[i]:
            assert decode_dna(x[i])[where[i] : where[i] + 6] == "TATAAT"
        else:
            assert where[i] == -1
    assert set(decode_dna(x[0])) <= set(DNA)


def test_domain_errors():
    with pytest.raises(ValueError, match="motif"):
        dna_with_motif(2, 10, motif="TAXA")
    with pytest.raises(ValueError, match="length must be >= 6"):
        dna_with_motif(2, 3)
    with pytest.raises(ValueError, match="seconds"):
        chirp(seconds=0)
