"""An RNN encoder-decoder with and without attention (chapter 5); its task, ``ReverseTask``, is in ``seqlab.data.tasks``.

Glossary, code name -> book notation:

    src            source ids x_1..x_S, shape (B, S)
    tgt_in         decoder inputs y_0..y_{T-1}, y_0 = BOS (teacher forcing: the true previous token), (B, T)
    tgt_out        targets y_1..y_T, the reversed source then EOS, (B, T)
    h              encoder states h_1..h_S, shape (B, S, d_hidden); bidirectional: h_j = [->h_j; <-h_j]
    s              decoder states s_1..s_T, shape (B, T, d_hidden); s_0 is the encoder's final state h_S
    c              context vectors c_i = sum_j a_ij h_j, shape (B, T, d_hidden)
    weights        attention weights a_ij (decoder step i, source position j), shape (B, T, S)
    logits         W_y [s_i; c_i] + b_y with attention, W_y s_i + b_y without, shape (B, T, V)

The encoder reads the source, h_j = GRU(E_x[x_j], h_{j-1}); by default in both
directions, as Bahdanau et al. (2015) did, each of width d_hidden / 2, so that h_j
describes x_j and its surroundings on both sides. The decoder starts from
s_0 = h_S (bidirectional: [->h_S; <-h_1], the two directions' final states) and
reads the previous target token, s_i = GRU(E_y[y_{i-1}], s_{i-1}).
Without attention, h_S is all the decoder ever learns of the source: a fixed-size
bottleneck, whatever the source's length. With attention, every step i also gets
the context c_i = sum_j a_ij h_j, with a_i = softmax_j score(s_i, h_j) over all the
encoder states (additive or dot-product, from ``attention.py``). With a one-way
encoder, h_{j+1} also holds x_j, and the learned weights on reversal often sit one
position off the "true" alignment: they match content, not positions.

Two choices, to keep the chapter short and fast:
- the recurrences are PyTorch's ``nn.GRU``: chapter 4 tests seqlab's GRU equal
  to ``nn.GRU``, and PyTorch's compiled layer is faster than seqlab's loop over time
  (chapter 4 and the benchmarks page time the two);
- attention sits on top of the decoder (Luong et al., 2015, without input
  feeding): the context enters the output layer, not the recurrence. So under
  teacher forcing all T steps run at once (one ``nn.GRU`` call, then one batched
  attention), and ``greedy_decode`` calls the same code one step at a time.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .. import _validate as validate
from .._validate import token_ids
from .attention import AdditiveAttention, DotProductAttention, padding_mask


# ---------------------------------------------------------------- the model
ATTENTION = (None, "additive", "dot", "general")


class Seq2Seq(nn.Module):
    """GRU encoder-decoder (Sutskever et al., 2014; chapter 5), with optional attention (Bahdanau/Luong).

    ``attention``: ``None`` (the decoder sees the source only through s_0 = h_S), ``"additive"``
    (``AdditiveAttention``, d_hidden wide), ``"dot"`` (s_i^T h_j) or ``"general"`` (s_i^T W h_j).
    ``bidirectional``: the encoder runs both ways, d_hidden / 2 per direction (d_hidden even).
    ``forward(src (B, S), tgt_in (B, T), src_lengths (B,) or None) -> (logits (B, T, V), weights
    (B, T, S) or None)`` with teacher forcing; source positions at or after ``src_lengths`` are
    padding: the encoder stops before them and attention gives them weight 0.
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_embed: int, d_hidden: int, attention: str | None = None,
                 bidirectional: bool = True):
        super().__init__()
        self.src_vocab = validate.positive_int("src_vocab", src_vocab, minimum=2)
        self.tgt_vocab = validate.positive_int("tgt_vocab", tgt_vocab, minimum=2)
        validate.positive_int("d_embed", d_embed)
        self.d_hidden = validate.positive_int("d_hidden", d_hidden)
        if attention not in ATTENTION:
            raise ValueError(f"attention must be one of {', '.join(map(repr, ATTENTION))}, got {attention!r}")
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional must be a bool, got {type(bidirectional).__name__}")
        if bidirectional and d_hidden % 2:
            raise ValueError(f"a bidirectional encoder needs an even d_hidden (d_hidden / 2 per direction), "
                             f"got d_hidden={d_hidden}")
        self.attention, self.bidirectional = attention, bidirectional
        self.src_embed = nn.Embedding(src_vocab, d_embed)  # E_x
        self.tgt_embed = nn.Embedding(tgt_vocab, d_embed)  # E_y
        self.encoder = nn.GRU(d_embed, d_hidden // 2 if bidirectional else d_hidden, batch_first=True,
                              bidirectional=bidirectional)
        self.decoder = nn.GRU(d_embed, d_hidden, batch_first=True)
        if attention == "additive":
            self.attn = AdditiveAttention(d_hidden, d_hidden, d_hidden)
        elif attention in ("dot", "general"):
            self.attn = DotProductAttention(d_hidden, d_hidden, kind=attention)
        else:
            self.attn = None
        self.head = nn.Linear(d_hidden * (1 if attention is None else 2), tgt_vocab)  # W_y, b_y

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor | None = None):
        """``(h (B, S, d_hidden), s_0 (1, B, d_hidden), mask (B, S) or None)``: the encoder states, h_S, and padding."""
        token_ids("src", src, self.src_vocab, ndim=2, min_length=1)
        B, S = src.shape
        e = self.src_embed(src)  # (B, S, d_embed)
        if src_lengths is None:
            h, h_n = self.encoder(e)  # (B, S, d_hidden), (directions, B, d_hidden / directions)
            mask = None
        else:
            validate.tensor("src_lengths", src_lengths, ndim=1, dtype="long")
            if len(src_lengths) != B:
                raise ValueError(f"src_lengths must have shape (B,) = ({B},), got shape {tuple(src_lengths.shape)}")
            mask = padding_mask(src_lengths, S)  # (B, S); checks 1 <= lengths <= S
            packed = pack_padded_sequence(e, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
            h, h_n = self.encoder(packed)  # h_n: each direction's state at the sequence's own end
            h, _ = pad_packed_sequence(h, batch_first=True, total_length=S)  # (B, S, d_hidden), zeros on padding
        s_0 = torch.cat(list(h_n), dim=-1)[None]  # (1, B, d_hidden): [->h_S; <-h_1], or h_S
        return h, s_0, mask

    def _decode(self, y: torch.Tensor, s_prev: torch.Tensor, h: torch.Tensor, mask):
        """Decoder steps for inputs ``y (B, T)`` from state ``s_prev``: ``(logits, weights or None, s_T)``."""
        s, s_last = self.decoder(self.tgt_embed(y), s_prev)  # (B, T, d_hidden), (1, B, d_hidden)
        if self.attn is None:
            return self.head(s), None, s_last  # (B, T, V)
        c, a = self.attn(s, h, mask)  # (B, T, d_hidden), (B, T, S)
        return self.head(torch.cat([s, c], dim=-1)), a, s_last  # (B, T, V), (B, T, S)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor, src_lengths: torch.Tensor | None = None):
        token_ids("tgt_in", tgt_in, self.tgt_vocab, ndim=2, min_length=1)
        h, s_0, mask = self.encode(src, src_lengths)
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size, got shapes "
                             f"{tuple(src.shape)} and {tuple(tgt_in.shape)}")
        logits, weights, _ = self._decode(tgt_in, s_0, h, mask)
        return logits, weights

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int, bos: int, src_lengths: torch.Tensor | None = None):
        """Decode ``max_len`` tokens from ``bos``, each step feeding back the most likely token.

        Returns ``(ids (B, max_len), weights (B, max_len, S) or None)``; it runs exactly ``max_len``
        steps (tokens after an EOS are whatever the model says next). The numbers equal ``forward``
        with ``tgt_in = [bos, ids[:, :-1]]`` (tested).
        """
        validate.positive_int("max_len", max_len)
        if isinstance(bos, bool) or not isinstance(bos, int) or not 0 <= bos < self.tgt_vocab:
            raise ValueError(f"bos must be an int in [0, {self.tgt_vocab}), got {bos!r}")
        h, s, mask = self.encode(src, src_lengths)
        y = torch.full((src.shape[0], 1), bos, dtype=torch.long, device=src.device)  # (B, 1)
        ids, weights = [], []
        for _ in range(max_len):
            logits, a, s = self._decode(y, s, h, mask)  # (B, 1, V), (B, 1, S) or None
            y = logits.argmax(dim=-1)  # (B, 1)
            ids.append(y)
            weights.append(a)
        return torch.cat(ids, dim=1), (None if self.attn is None else torch.cat(weights, dim=1))

    @torch.no_grad()
    def beam_search(self, src: torch.Tensor, max_len: int, bos: int, eos: int, beam: int = 3,
                    src_lengths: torch.Tensor | None = None):
        """Decode with a beam of ``beam`` hypotheses per source (chapter 5): the most probable outputs it finds.

        Every step extends each kept hypothesis y_1..y_i by every token and keeps the ``beam`` with the
        highest total log-probability sum_i log p(y_i | y_<i, x); a hypothesis that wrote ``eos`` is
        finished and keeps its score (it is extended by ``eos`` only). No length penalty. ``beam=1`` is
        greedy decoding up to the first ``eos``. Returns ``(ids (B, max_len), log_prob (B,))`` for the
        best hypothesis of each source, positions after its ``eos`` filled with ``eos``.
        """
        validate.positive_int("max_len", max_len)
        validate.positive_int("beam", beam)
        for name, tok in (("bos", bos), ("eos", eos)):
            if isinstance(tok, bool) or not isinstance(tok, int) or not 0 <= tok < self.tgt_vocab:
                raise ValueError(f"{name} must be an int in [0, {self.tgt_vocab}), got {tok!r}")
        h, s, mask = self.encode(src, src_lengths)
        B, k, V = src.shape[0], beam, self.tgt_vocab
        h = h.repeat_interleave(k, dim=0)                                   # (B k, S, d_hidden)
        s = s.repeat_interleave(k, dim=1)                                   # (1, B k, d_hidden)
        mask = None if mask is None else mask.repeat_interleave(k, dim=0)   # (B k, S)
        scores = torch.full((B, k), float("-inf"), device=src.device)
        scores[:, 0] = 0.0                                                  # one live hypothesis at the start
        done = torch.zeros(B, k, dtype=torch.bool, device=src.device)
        ids = torch.empty(B, k, 0, dtype=torch.long, device=src.device)
        y = torch.full((B * k, 1), bos, dtype=torch.long, device=src.device)
        absorb = torch.full((V,), float("-inf"), device=src.device)
        absorb[eos] = 0.0                                                   # a finished hypothesis only writes eos, for free
        for _ in range(max_len):
            logits, _, s = self._decode(y, s, h, mask)                      # (B k, 1, V)
            logp = torch.log_softmax(logits[:, 0].float(), dim=-1).view(B, k, V)
            logp = torch.where(done[..., None], absorb, logp)
            total = (scores[..., None] + logp).view(B, k * V)               # every extension of every hypothesis
            scores, best = total.topk(k, dim=-1)                            # (B, k), sorted
            parent, token = best // V, best % V
            ids = torch.cat([ids.gather(1, parent[..., None].expand(-1, -1, ids.shape[-1])), token[..., None]], dim=-1)
            done = done.gather(1, parent) | (token == eos)
            rows = (parent + torch.arange(B, device=src.device)[:, None] * k).view(-1)
            s = s[:, rows]                                                  # each kept hypothesis's decoder state
            y = token.view(B * k, 1)
            if bool(done.all()):
                break
        out = ids[:, 0]                                                     # (B, steps run): the best hypothesis
        if out.shape[1] < max_len:
            out = torch.cat([out, out.new_full((B, max_len - out.shape[1]), eos)], dim=1)
        return out, scores[:, 0]

    def extra_repr(self) -> str:
        return f"attention={self.attention!r}, bidirectional={self.bidirectional}"
