"""Byte-pair encoding (seqlab.data.bpe): lossless, agrees with the merges applied in order, and compresses."""
import pytest
import torch

from seqlab.data import BytePairEncoder, CharCorpus, split_words
from seqlab.data.bpe import _merge_word

TEXT = "the cat sat on the mat; the hat.\n  that hat, the bat!\n" * 3


def test_split_words_is_lossless_and_keeps_the_space_with_the_word():
    words = split_words(TEXT + "\t x  y")
    assert "".join(words) == TEXT + "\t x  y"
    assert " cat" in words and "the" in words


def test_the_first_merge_is_the_most_frequent_pair():
    bpe = BytePairEncoder.train("aaab aab ab", 1)
    assert bpe.merges == [("a", "b")]                    # 'ab' occurs 3 times, 'aa' 3 times (weighted): ties broken by the pair
    bpe = BytePairEncoder.train("ab ab ab xy", 1)
    assert bpe.merges == [("a", "b")] and bpe.vocab[-1] == "ab"


def test_encode_decode_round_trip_and_vocabulary():
    bpe = BytePairEncoder.train(TEXT, 20)
    ids = bpe.encode(TEXT)
    assert ids.dtype == torch.long and ids.dim() == 1
    assert bpe.decode(ids) == TEXT and bpe.decode(ids.tolist()) == TEXT
    assert bpe.vocab_size == len(set(TEXT)) + len(bpe.merges) == len(bpe.vocab)
    assert len(ids) < len(TEXT)                          # merges shorten the text


def test_encoding_applies_the_merges_in_the_order_they_were_learned():
    text = CharCorpus().text[:20_000]
    bpe = BytePairEncoder.train(text, 150)
    for word in set(split_words(text)):
        tokens = tuple(word)
        for pair in bpe.merges:                          # the training procedure, replayed merge by merge
            tokens = _merge_word(tokens, pair)
        assert bpe.tokenize(word) == tokens, word


def test_more_merges_compress_more():
    text = CharCorpus().text[:30_000]
    lengths = [len(BytePairEncoder.train(text, n).encode(text)) for n in (0, 10, 50, 200)]
    assert lengths[0] == len(text)
    assert all(a > b for a, b in zip(lengths, lengths[1:]))


def test_training_stops_when_no_pair_repeats():
    bpe = BytePairEncoder.train("abcd", 10)
    assert bpe.merges == []


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="n_merges"):
        BytePairEncoder.train(TEXT, 2.5)
    with pytest.raises(ValueError, match="n_merges"):
        BytePairEncoder.train(TEXT, -1)
    with pytest.raises(ValueError, match="empty"):
        BytePairEncoder.train("", 3)
    with pytest.raises(ValueError, match="alphabet"):
        BytePairEncoder.train("abc", 3, alphabet="ab")
    bpe = BytePairEncoder.train("abab", 1)
    with pytest.raises(ValueError, match="not in the alphabet"):
        bpe.encode("abz")
    with pytest.raises(ValueError, match="out of range"):
        bpe.decode([0, 99])
    with pytest.raises(TypeError, match="integer"):
        bpe.decode(torch.zeros(3))
    with pytest.raises(TypeError, match="str"):
        split_words(b"bytes")
