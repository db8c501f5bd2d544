"""Chapter 8's recorded extrapolation study (``positions``) and chapter 9's timing clock: the shape of what they
record, and that a seed's encodings share their batches."""
from __future__ import annotations

import pytest
import torch

from seqlab.data.corpus import CharCorpus
from seqlab.experiments import attention, cost
from seqlab.models import GPT, GPTConfig


def test_positions_records_every_encoding_rate_and_seed_with_a_loss_at_every_position(monkeypatch):
    monkeypatch.setenv("SEQLAB_RUNLOG_DIR", "")                      # no log: a fresh run
    out = attention.positions(scale="tiny", seeds=(0, 1))
    s = out["settings"]
    assert s == attention.POSITION_STUDY_SETTINGS["tiny"] and len(s["lrs"]) == 3
    runs = out["runs"]
    assert attention.STUDY_ARMS == attention.ENCODINGS + ("sinusoidal, scaled",)   # five encodings, one table rescaled
    assert len(runs) == len(attention.STUDY_ARMS) * len(s["lrs"]) * 2
    assert {(r["encoding"], r["lr"], r["seed"]) for r in runs} == {
        (e, lr, sd) for e in attention.STUDY_ARMS for lr in s["lrs"] for sd in (0, 1)}
    assert all(len(r["by_position"]) == 4 * s["train_len"] and r["train_tail"] > 0 for r in runs)
    lines = attention.render_position_study(out)
    assert sum("<- chosen" in line for line in lines) == len(attention.STUDY_ARMS)   # one rate chosen per arm


def test_the_scaled_sinusoidal_arm_is_the_sinusoidal_gpt_with_its_table_at_the_embeddings_size(monkeypatch):
    """The sixth arm: the same initial weights as the sinusoidal arm, its table scaled by init_std * sqrt(2)."""
    import math

    seen = {}
    original = attention.train_position_lm

    def spy(model, *args, **kwargs):
        seen[kwargs["desc"]] = (model, {k: v.clone() for k, v in model.state_dict().items()})   # before training
        return original(model, *args, **kwargs)

    monkeypatch.setattr(attention, "train_position_lm", spy)
    s = dict(attention.POSITION_STUDY_SETTINGS["tiny"], lm_steps=1)
    corpus = CharCorpus()
    val = corpus.val[: 4 * (4 * s["train_len"] + 1)].view(4, -1)
    for enc in ("sinusoidal", attention.SCALED_SINUSOIDAL):
        attention.position_study_run(enc, 1e-3, 0, s, corpus, val)
    (plain, init_plain), (scaled, init_scaled) = seen["sinusoidal"], seen[attention.SCALED_SINUSOIDAL]
    assert plain.positions.scale == 1.0
    assert math.isclose(scaled.positions.scale, scaled.config.init_std * math.sqrt(2))
    assert init_plain.keys() == init_scaled.keys() and all(torch.equal(init_plain[k], init_scaled[k]) for k in init_plain)


def test_a_seeds_encodings_see_the_same_batches_and_the_default_stream_is_seed_0():
    corpus = CharCorpus()
    seen = []
    original = corpus.batch

    def spy(*args, **kwargs):
        x, y = original(*args, **kwargs)
        seen.append(x.clone())
        return x, y

    corpus.batch = spy
    make = lambda enc: GPT(GPTConfig(corpus.vocab_size, d_model=16, n_heads=2, n_layers=1, max_len=32, positions=enc))
    for enc, kw in (("none", {}), ("rope", {"batch_seed": 0}), ("alibi", {"batch_seed": 1})):
        attention.train_position_lm(make(enc), corpus, batch=2, T_train=8, steps=2, lr=1e-3, progress=False, **kw)
    assert torch.equal(seen[0], seen[2]) and torch.equal(seen[1], seen[3])      # default stream == batch_seed 0
    assert not torch.equal(seen[0], seen[4])                                    # another seed, other batches


def test_time_against_length_counts_cpu_seconds_when_asked():
    layers = {name: layer for name, layer in cost.cost_layers(8).items() if name in ("nn.LSTM", "attention, fused")}
    n_max = {name: 16 for name in layers}
    for clock in ("wall", "cpu"):
        seconds, ns_of = cost.time_against_length(layers, [8, 16], n_max, batch=1, d=8, repeats=1,
                                                  generator=torch.Generator().manual_seed(0), clock=clock)
        assert ns_of == {name: [8, 16] for name in layers}
        assert all(t > 0 for ts in seconds.values() for t in ts)


def test_time_against_length_gives_the_short_lengths_their_own_rounds(monkeypatch):
    layers = {name: layer for name, layer in cost.cost_layers(8).items() if name in ("nn.LSTM", "attention, fused")}
    n_max = {"nn.LSTM": 32, "attention, fused": 16}
    groups = []
    real = cost.time_calls

    def spy(calls, *, repeats, **kw):
        groups.append((sorted(calls), repeats))
        return real(calls, repeats=repeats, **kw)

    monkeypatch.setattr(cost, "time_calls", spy)
    seconds, ns_of = cost.time_against_length(layers, [8, 16, 32], n_max, batch=1, d=8, repeats=1, short_rounds=(16, 3),
                                              generator=torch.Generator().manual_seed(0))
    assert groups == [([("attention, fused", 8), ("attention, fused", 16), ("nn.LSTM", 8), ("nn.LSTM", 16)], 3),
                      ([("nn.LSTM", 32)], 1)]                       # each group's layers side by side, its own rounds
    assert ns_of == {"nn.LSTM": [8, 16, 32], "attention, fused": [8, 16]}
    assert [len(seconds[name]) for name in layers] == [3, 2]
    for bad in ((16,), (0, 3), (16, 0)):
        with pytest.raises(ValueError, match="short_rounds"):
            cost.time_against_length(layers, [8], n_max, batch=1, d=8, repeats=1, short_rounds=bad,
                                     generator=torch.Generator().manual_seed(0))
