"""Seq2Seq.beam_search against an exhaustive search (a beam wider than every hypothesis) and against greedy decoding."""
import itertools

import pytest
import torch

from seqlab.models import Seq2Seq


def _model(attention="additive", seed=0, vocab=5):
    torch.manual_seed(seed)
    m = Seq2Seq(vocab, vocab, 6, 8, attention=attention).eval()
    with torch.no_grad():                          # sharper, more varied distributions than at initialisation
        m.head.weight.mul_(4)
    return m


def _log_prob(model, src, lengths, seq, bos):
    """log p(seq | src) under teacher forcing, the independent second form."""
    tgt_in = torch.tensor([[bos] + list(seq[:-1])])
    logits, _ = model(src, tgt_in, lengths)
    return torch.log_softmax(logits[0], -1).gather(1, torch.tensor(seq)[:, None]).sum().item()


def _exhaustive(model, src, lengths, max_len, bos, eos):
    """The most probable output: every sequence of max_len tokens that is eos-padded after its first eos."""
    V = model.tgt_vocab
    best, best_lp = None, float("-inf")
    for seq in itertools.product(range(V), repeat=max_len):
        if eos in seq:
            first = seq.index(eos)
            if any(t != eos for t in seq[first:]):
                continue
            scored = seq[: first + 1]
        else:
            scored = seq
        lp = _log_prob(model, src, lengths, scored, bos)
        if lp > best_lp:
            best, best_lp = seq, lp
    return list(best), best_lp


@pytest.mark.parametrize("attention", [None, "additive"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wide_beam_finds_the_most_probable_output(attention, seed):
    model = _model(attention, seed)
    bos, eos, max_len = 3, 4, 3
    src = torch.randint(0, 3, (2, 4), generator=torch.Generator().manual_seed(seed))
    lengths = torch.tensor([4, 2])
    ids, lp = model.beam_search(src, max_len, bos, eos, beam=5 ** max_len, src_lengths=lengths)
    for b in range(2):
        best, best_lp = _exhaustive(model, src[b : b + 1], lengths[b : b + 1], max_len, bos, eos)
        assert ids[b].tolist() == best
        assert lp[b].item() == pytest.approx(best_lp, abs=1e-4)


@pytest.mark.parametrize("attention", [None, "additive"])
def test_beam_one_is_greedy_and_scores_are_log_probabilities(attention):
    model = _model(attention, 3, vocab=7)
    bos, eos = 5, 6
    src = torch.randint(0, 5, (4, 6), generator=torch.Generator().manual_seed(0))
    greedy, _ = model.greedy_decode(src, 6, bos)
    ids, lp = model.beam_search(src, 6, bos, eos, beam=1)
    for b in range(4):
        g = greedy[b].tolist()
        end = g.index(eos) + 1 if eos in g else len(g)
        assert ids[b, :end].tolist() == g[:end] and set(ids[b, end:].tolist()) <= {eos}
        assert lp[b].item() == pytest.approx(_log_prob(model, src[b : b + 1], None, g[:end], bos), abs=1e-4)
    wide, lp3 = model.beam_search(src, 6, bos, eos, beam=3)
    for b in range(4):                              # each returned score is the log-probability of its output
        w = wide[b].tolist()
        end = w.index(eos) + 1 if eos in w else len(w)
        assert lp3[b].item() == pytest.approx(_log_prob(model, src[b : b + 1], None, w[:end], bos), abs=1e-4)


def test_beam_search_bad_arguments():
    model = _model()
    src = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="beam"):
        model.beam_search(src, 3, 3, 4, beam=0)
    with pytest.raises(ValueError, match="eos must be an int"):
        model.beam_search(src, 3, 3, 9)
    with pytest.raises(ValueError, match="max_len"):
        model.beam_search(src, 0, 3, 4)
    for bad in (-1, 5, True, 2.0):                                  # the range is [0, V): both ends, and not a bool
        with pytest.raises(ValueError, match="bos must be an int"):
            model.beam_search(src, 3, bad, 4)
    ids, _ = model.beam_search(src, 3, 0, 4)                        # token 0 and token V - 1 are valid
    assert ids.shape == (1, 3)
