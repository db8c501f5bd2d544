"""Exercise checkers: a learner's function goes in, a precise message comes out.

Every checker runs the learner's function and a reference on the same small,
hand-picked cases and reports the *first* thing that is wrong: an exception,
a wrong type, a wrong shape, a wrong dtype, or the first entry that differs,
with the case that showed it. Known mistakes (a transposed matrix, a natural
log where base 2 was asked for, ...) get a hint of their own.

    result = seqlab.check.bigram_counts(my_bigram_counts)
    result            # shows "✓ ..." or "✗ ..." with what to fix
    assert result     # truthy only when every case agrees

``core`` holds the shared ``Result``/``compare``; each chapter's checkers live in a
module of their own (``ch01`` ... ), next to their reference solutions, and
are re-exported here.
"""
from .core import Case, Result, compare
from .ch01 import bigram_counts, bits_per_char
from .ch02 import rnn_step
from .ch03 import bptt_step
from .ch04 import gru_step
from .ch05 import additive_attention
from .ch06 import causal_attention
from .ch07 import cross_attention, pre_norm_block
from .ch08 import apply_rope
from .ch09 import cached_attention_step
from .ch10 import forward_flops
from .ch11 import prefix_matching_score

from .ch12 import linear_attention_recurrent
from .ch13 import zoh_discretize
from .ch13b import log_space_scan, mingru_step
from .ch14 import rglru_step
from .ch15 import kv_cache_bytes

__all__ = ['Result', 'Case', 'compare', 'bigram_counts', 'bits_per_char', 'rnn_step', 'bptt_step', 'gru_step', 'additive_attention', 'causal_attention', 'pre_norm_block', 'cross_attention', 'apply_rope', 'cached_attention_step', 'forward_flops', 'prefix_matching_score', 'linear_attention_recurrent', 'zoh_discretize', 'mingru_step', 'log_space_scan', 'rglru_step', 'kv_cache_bytes']
