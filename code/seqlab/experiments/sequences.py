"""n-gram models of every order on the course's text: where more context stops helping (chapter 1).

Glossary, code name -> book notation::

    n              the order: p(x_t | x_{t-n+1} .. x_{t-1}), a context of n - 1 characters
    add-k          counts plus k, normalised (k = 0.01 here)
    witten-bell    backing off to shorter contexts in proportion to how many different characters
                   followed a context (Witten & Bell, 1991)
    bits           bits per character, -mean log2 p(x_t | context), on the training or validation text

``ngram_orders`` fits both smoothings at every order and scores both splits; chapter 1 calls it for
its table and figure, and ``ngrams`` (registered as ``python -m seqlab.experiments ngrams``) runs it at
a scale. Counting is deterministic: the seeds are recorded but change nothing.
"""
from __future__ import annotations

from .. import _validate as validate
from ..data.corpus import CharCorpus
from ..models.ngram import NGramLM, uniform_bits
from . import register
from .distributed import map_runs

SMOOTHINGS = ("add-k", "witten-bell")

SETTINGS = {
    "tiny": dict(max_order=2, k=0.01, chars=20_000),
    "quick": dict(max_order=7, k=0.01, chars=None),          # chapter 1's table
    "full": dict(max_order=10, k=0.01, chars=None),
}


def ngram_orders(corpus: CharCorpus, max_order: int, k: float = 0.01, start: int | None = None,
                 progress: bool = False) -> tuple[dict, NGramLM]:
    """Bits per character of add-k and Witten–Bell n-grams of orders 1 .. ``max_order`` (chapter 1).

    Returns ``(results, wb)``: ``results[smoothing][split]`` lists the bits at each order, scored
    from position ``start`` (default ``max_order - 1``, so every order scores the same positions),
    and ``wb`` is the Witten–Bell model of the highest order (``wb.truncated(n)`` gives the others).
    """
    validate.positive_int("max_order", max_order)
    V = corpus.vocab_size
    start = max_order - 1 if start is None else start
    wb = NGramLM(max_order, V, smoothing="witten-bell").fit(corpus.train)

    def one(n):
        models = {"add-k": NGramLM(n, V, smoothing="add-k", k=k).fit(corpus.train), "witten-bell": wb.truncated(n)}
        return {name: {"train": m.bits_per_char(corpus.train, start), "val": m.bits_per_char(corpus.val, start)}
                for name, m in models.items()}

    per_order = map_runs(one, range(1, max_order + 1), progress=progress, desc="n-gram orders")
    results = {name: {split: [r[name][split] for r in per_order] for split in ("train", "val")} for name in SMOOTHINGS}
    return results, wb


def render_ngrams(results: dict) -> list[str]:
    """The n-gram table of an ``ngrams`` results dict: bits per character by smoothing, split and order, the
    uniform guess and the best Witten–Bell order (chapter 1)."""
    orders = results["orders"]
    lines = [f"{'smoothing':12s} {'split':5s} " + " ".join(f"{'n=' + str(n):>6s}" for n in orders)]
    for name, r in results["bits"].items():
        for split, b in r.items():
            lines.append(f"{name:12s} {split:5s} " + " ".join(f"{v:6.3f}" for v in b))
    lines.append(f"uniform guess {results['uniform_bits']:.3f}; best Witten-Bell order {results['best_order']} "
                 f"(counting is deterministic: the seeds change nothing)")
    return lines


@register("ngrams", "chapter 1: add-k and Witten-Bell n-grams of every order, bits per character", chapter=1,
          render=render_ngrams)
def ngrams(scale: str = "quick", seeds=(0,), device=None, progress: bool = False) -> dict:
    """The n-gram table of chapter 1 at ``scale`` ('tiny' for tests, 'quick' = the chapter's, 'full' to order 10)."""
    s = SETTINGS[scale]
    corpus = CharCorpus()
    if s["chars"]:
        corpus = CharCorpus(text=corpus.text[: s["chars"]])
    results, _ = ngram_orders(corpus, s["max_order"], s["k"], progress=progress)
    orders = list(range(1, s["max_order"] + 1))
    best = min(range(len(orders)), key=lambda i: results["witten-bell"]["val"][i])
    return {"settings": s, "orders": orders, "bits": results, "best_order": orders[best],
            "uniform_bits": uniform_bits(corpus.vocab_size)}
