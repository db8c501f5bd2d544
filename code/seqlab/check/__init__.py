"""Exercise checkers: a learner's function goes in, a precise message comes out.

Every checker runs the learner's function and a reference on the same small,
hand-picked cases and reports the *first* thing that is wrong: an exception,
a wrong type, a wrong shape, a wrong dtype, or the first entry that differs,
with the case that showed it. Known mistakes (a transposed matrix, a natural
log where base 2 was asked for, a state not carried, a wrong axis, ...) get a
hint of their own; a stub that is not written yet gets "not written yet".

    result = seqlab.check.bigram_counts(my_bigram_counts)
    result            # shows "✓ ..." or "✗ ..." with what to fix
    assert result     # truthy only when every case agrees
    seqlab.check.summary(1)   # which of chapter 1's checked exercises pass

``core`` holds the shared ``Result``/``compare``/``summary``; each chapter's
checkers live in a module of their own (``ch01`` ... ), next to their
reference solutions, and are re-exported here. The exercise notebooks
(``exercises/``, written by ``python -m seqlab.exercises``) call them on stubs.
"""
from .core import Case, Result, Summary, checkers, compare, summary
from .ch01 import bigram_counts, bits_per_char
from .ch02 import rnn_forward, rnn_step
from .ch03 import bptt_step, clip_grad_norm
from .ch04 import gru_step, lstm_step
from .ch05 import additive_attention, alignment_accuracy
from .ch06 import causal_attention, multi_head_attention
from .ch07 import cross_attention, layer_norm, masked_token_loss, pre_norm_block
from .ch08 import apply_rope, sinusoidal_encoding
from .ch09 import cached_attention_step, linear_scan
from .ch10 import fit_power_law, forward_flops
from .ch11 import icl_score, prefix_matching_score
from .ch12 import linear_attention_parallel, linear_attention_recurrent
from .ch13 import s4d_kernel, selective_scan, zoh_discretize
from .ch13b import log_space_scan, mingru_step
from .ch14 import rglru_step, sliding_window_attention
from .ch15 import kv_cache_bytes, pareto_front

__all__ = ['Result', 'Case', 'Summary', 'compare', 'summary', 'checkers',
           'bigram_counts', 'bits_per_char', 'rnn_step', 'rnn_forward', 'bptt_step', 'clip_grad_norm',
           'gru_step', 'lstm_step', 'additive_attention', 'alignment_accuracy', 'causal_attention',
           'multi_head_attention', 'pre_norm_block', 'layer_norm', 'cross_attention', 'masked_token_loss',
           'apply_rope', 'sinusoidal_encoding', 'cached_attention_step', 'linear_scan', 'forward_flops',
           'fit_power_law', 'prefix_matching_score', 'icl_score', 'linear_attention_recurrent',
           'linear_attention_parallel', 'zoh_discretize', 's4d_kernel', 'selective_scan', 'mingru_step', 'log_space_scan', 'rglru_step', 'sliding_window_attention',
           'kv_cache_bytes', 'pareto_front']
