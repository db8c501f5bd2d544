"""Data for the book: synthetic tasks, the character corpus and other sequence domains."""
from .bpe import BytePairEncoder, split_words
from .corpus import CORPORA, CharCorpus, CharTokenizer, Download, fetch, load_text, pydoc_text
from .gapped_recall import GappedRecall
from .stdlib import CORPUS_NAMES, StdlibCorpus, load_corpus
from .domains import DNA, chirp, decode_dna, dna_with_motif, seasonal_series
from .tasks import (
    IGNORE,
    AddingProblem,
    AssociativeRecall,
    CopyTask,
    DelayedRecall,
    MarkerOrder,
    RepeatedSequence,
    RepeatedSpans,
    ReverseTask,
    SelectiveCopy,
    SpanPositions,
    TokenTask,
    make_generator,
    memoryless_accuracy,
)

__all__ = [
    "IGNORE", "AddingProblem", "AssociativeRecall", "CopyTask", "DelayedRecall", "MarkerOrder", "RepeatedSequence", "RepeatedSpans",
    "ReverseTask", "SpanPositions",
    "SelectiveCopy", "TokenTask", "GappedRecall", "make_generator", "memoryless_accuracy",
    "BytePairEncoder", "split_words",
    "CORPORA", "CORPUS_NAMES", "StdlibCorpus", "load_corpus", "CharCorpus", "CharTokenizer", "Download", "fetch", "load_text", "pydoc_text",
    "DNA", "chirp", "decode_dna", "dna_with_motif", "seasonal_series",
]
