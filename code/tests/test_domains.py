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


def test_seasonal_series_noise_is_gaussian_with_the_given_scale():
    # the same seed draws the same amplitudes, phases and trends, so the difference of two noise
    # levels is the noise itself: noise * N(0, 1), independent across steps
    clean = seasonal_series(64, 200, noise=0.0, generator=3)
    noisy = seasonal_series(64, 200, noise=0.5, generator=3)
    e = (noisy - clean).flatten() / 0.5  # should be N(0, 1)
    n = e.numel()
    assert abs(e.mean().item()) < 5 / n**0.5
    assert abs(e.std().item() - 1.0) < 0.03
    assert (e < 0).float().mean().item() > 0.45  # symmetric, not uniform on [0, 1)
    assert abs(((e.abs() < 1).float().mean().item()) - 0.6827) < 0.02  # one sigma holds 68 %


@pytest.mark.parametrize("f0, f1", [(200.0, 1200.0), (300.0, 300.0), (800.0, 100.0)])
def test_chirp_frequency_sweeps_linearly_from_f0_to_f1(f0, f1):
    seconds, rate = 0.5, 16000
    x = chirp(seconds=seconds, sample_rate=rate, f0=f0, f1=f1)[0, :, 0]

    def crossings(sig):  # a sine of frequency f crosses zero 2 f times per second
        return int(((sig[:-1] < 0) != (sig[1:] < 0)).sum())

    assert abs(crossings(x) - (f0 + f1) * seconds) <= 2  # the mean frequency is (f0 + f1) / 2
    tenth = len(x) // 10  # the frequency at the start and at the end of the sweep
    start, end = crossings(x[:tenth]) / (2 * seconds / 10), crossings(x[-tenth:]) / (2 * seconds / 10)
    assert abs(start - (f0 + 0.05 * (f1 - f0))) < 25 and abs(end - (f1 - 0.05 * (f1 - f0))) < 25
