"""From-scratch sequence models, one family per module.

Every layer that mixes along time is a ``Mixer`` (``forward(x, state=None) -> (y, state)``, ``step``,
``form``, ``state_bytes``; ``mixer.py``), and the language models over stacks of them are one shell,
``SeqLM`` (``seqlm.py``), returning ``(logits, state)``.

Each module opens with a glossary from its code names to the book's notation,
and where PyTorch has an equivalent, ``code/tests`` tests that the two agree.
"""
from .attention import (AdditiveAttention, DotProductAttention, MultiHeadAttention, additive_attention, causal_mask,
                        padding_mask, scaled_dot_product_attention)
from .charlm import RecurrentLM
from .encoder_decoder import (CrossAttention, DecoderCache, DecoderLayer, DecoderLayerCache, EncoderDecoder,
                              EncoderDecoderConfig, EncoderLayer)
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell
from .linear_attention import LinearAttention, LinearAttentionConfig
from .hybrid import HybridConfig, HybridLM, RecurrentBlock, attention_block
from .mixer import CausalConv1d, Mixer, ShortConv, state_bytes
from .mixer_lm import MixerLM, MixerLMConfig
from .seqlm import SeqLM
from .ngram import NGramLM, uniform_bits
from .rnn import RNN, Bidirectional, RNNCell
from .sampling import sample_next
from .positional import (LearnedPositions, SinusoidalPositions, alibi_bias, alibi_slopes, apply_rope, rope_angles,
                         sinusoidal_encoding)
from .seq2seq import Seq2Seq
from ..data.tasks import ReverseTask  # defined in seqlab.data (chapter 5); importable here too, as chapter 5 does
from .ssm import SSMConfig, SSMLayer
from .transformer import GPT, FeedForward, GPTConfig, KVCache, LayerCache, SelfAttention, TransformerBlock

__all__ = [
    "Bidirectional",
    "NGramLM", "uniform_bits", "sample_next",
    "RNNCell", "RNN", "LSTMCell", "LSTM", "GRUCell", "GRU", "RecurrentLM",
    "scaled_dot_product_attention", "causal_mask", "padding_mask", "additive_attention",
    "AdditiveAttention", "DotProductAttention", "MultiHeadAttention", "Seq2Seq", "ReverseTask",
    "CrossAttention", "EncoderLayer", "DecoderLayer", "DecoderLayerCache", "DecoderCache", "EncoderDecoderConfig",
    "EncoderDecoder",
    "sinusoidal_encoding", "SinusoidalPositions", "LearnedPositions", "rope_angles", "apply_rope", "alibi_slopes",
    "alibi_bias", "SelfAttention", "FeedForward", "TransformerBlock", "GPTConfig", "GPT", "KVCache", "LayerCache",
    "LinearAttentionConfig", "LinearAttention", "SSMConfig", "SSMLayer", "MixerLMConfig", "MixerLM",
    "Mixer", "CausalConv1d", "ShortConv", "state_bytes", "SeqLM", "HybridConfig", "HybridLM", "RecurrentBlock",
    "attention_block",
]
