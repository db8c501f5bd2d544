"""Tests for code computed one way only, each written for a survivor of a mutation run (issue 23, §7).

Every test checks a quantity against its definition, by hand, where the package has no second
implementation to compare with.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlab.experiments import longrange
from seqlab.experiments.ssm import norm_change
from seqlab.models import MultiHeadAttention, SSMConfig, SSMLayer


def test_multi_head_attention_has_biases_by_default_like_pytorchs():
    ours, theirs = MultiHeadAttention(8, 2), nn.MultiheadAttention(8, 2)
    assert all(getattr(ours, w).bias is not None for w in ("W_q", "W_k", "W_v", "W_o"))
    assert theirs.in_proj_bias is not None                     # PyTorch's default is bias=True as well
    assert all(getattr(MultiHeadAttention(8, 2, bias=False), w).bias is None for w in ("W_q", "W_k", "W_v", "W_o"))


@pytest.mark.parametrize("selective", [True, False])
def test_ssm_state_numel_counts_the_state_the_layer_returns(selective):
    config = SSMConfig(d_model=8, d_state=4, selective=selective)
    layer = SSMLayer(config)
    _, state = layer(torch.randn(2, 5, 8))
    parts = state if isinstance(state, (tuple, list)) else (state,)
    # a complex number (S4D's state) is two real numbers
    numel = sum(p.numel() * (2 if p.is_complex() else 1) for p in parts if isinstance(p, torch.Tensor))
    assert config.state_numel() * 2 == numel                     # per sequence, batch of 2


def test_norm_change_is_the_step_to_step_change_of_the_norm_over_its_mean():
    norms = torch.tensor([[1.0, 3.0, 2.0], [2.0, 2.0, 8.0]])
    mean = norms.mean()                                          # 3.0
    want = torch.tensor([[1.0, 2.0, 1.0], [2.0, 0.0, 6.0]]) / mean   # |‖h_t‖ − ‖h_{t−1}‖|, ‖h_0‖ = 0
    assert torch.allclose(norm_change(norms), want)
    with pytest.raises(ValueError):
        norm_change(torch.ones(3))


def test_a_long_range_run_reports_its_last_validation_accuracy(monkeypatch):
    from seqlab.train import History

    def fake_train(model, batches, **kw):                      # a run whose validation curve rises: 0.2, 0.5, 0.7
        return History(loss=[1.0] * 3, eval_step=[1, 2, 3], eval={"val_accuracy": [0.2, 0.5, 0.7]})

    monkeypatch.setattr(longrange, "train", fake_train)
    r = longrange.train_one("lag", "RNN", 1e-2, task_options=dict(lag=4, vocab=4), params=400, steps=3, batch=4,
                            eval_batch=16, eval_every=1, seed=0)
    assert r["val_accuracy"] == 0.7 and r["curve"] == {"step": [1, 2, 3], "val_accuracy": [0.2, 0.5, 0.7]}
    assert r["steps"] == 3
