"""Long-Range-Arena-style tasks small enough for a CPU: ListOps and a Pathfinder-like image (chapter 15).

Both are classification read left to right: ``x`` (B, T) token ids, ``y`` (B, T) with the class at
the last step and ``IGNORE`` elsewhere, as the token tasks of ``seqlab.data.tasks`` (so every model
of the course trains on them with the same loop). Procedurally generated and seeded.

``ListOps`` (Nangia & Bowman, 2018; the LRA version of Tay et al., 2021): nested expressions such as
``[MAX 4 3 [MIN 2 3 ] 1 0 [MED 1 5 8 9 2 ] ]`` over the digits 0–9 with the operators MAX, MIN, MED
(the median: the middle element of the sorted arguments, the upper one for an even count) and SM
(sum modulo 10); the answer is the value, a digit. The expression is left-padded to ``length``, so
the last step has read all of it. Solving it needs a stack: the value of a bracket is known only when
it closes, possibly far from where it opened.

``Pathfinder`` (Linsley et al., 2018; LRA's image task, smaller): an S × S image holding two thin
curves that never touch, and two dots. Label 1 when both dots sit at the two ends of one curve,
0 when they sit at the ends of different curves; both classes have the same number of curve pixels
and dots, so only tracing a curve tells them apart. Pixels are 0 (background), 1 (curve), 2 (dot);
read in raster order as a sequence of T = S² tokens, the two ends of a curve can be hundreds of steps
apart. ``patch_tokens`` turns the image into ViT-style patches — each p × p patch one token of the
3^(p²) possible ones — and ``row_vectors`` into S rows of one-hot pixels, for an RNN that reads the
image a row per step (the course's vision example).

Glossary (code name -> book notation): ``T`` sequence length, ``S`` image side, ``p`` patch side.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from .. import _validate as validate
from ..config import make_generator
from .tasks import IGNORE, TokenTask

# ------------------------------------------------------------------------------------------------ ListOps
OPS = ("MAX", "MIN", "MED", "SM")
DIGITS = 10
OPEN = {op: DIGITS + i for i, op in enumerate(OPS)}  # "[MAX" .. "[SM" -> 10 .. 13
CLOSE = DIGITS + len(OPS)  # "]" -> 14
PAD = CLOSE + 1  # 15
TOKENS = [str(d) for d in range(DIGITS)] + [f"[{op}" for op in OPS] + ["]", "_"]


def listops_value(op: str, args: list[int]) -> int:
    """The value of ``[op args...]`` (chapter 15): max, min, the median (upper for even counts), sum mod 10."""
    if op not in OPS:
        raise ValueError(f"op must be one of {OPS}, got {op!r}")
    if not args:
        raise ValueError("an operator needs at least one argument")
    if op == "MAX":
        return max(args)
    if op == "MIN":
        return min(args)
    if op == "MED":
        return sorted(args)[len(args) // 2]
    return sum(args) % 10


def evaluate_tokens(tokens: list[int]) -> int:
    """Evaluate a ListOps token list (no padding) with an explicit stack: an independent check of the labels (chapter 15)."""
    stack: list = []
    for t in tokens:
        if t == PAD:
            continue
        if t < DIGITS:
            stack.append(t)
        elif t in OPEN.values():
            stack.append(("op", OPS[t - DIGITS]))
        elif t == CLOSE:
            args = []
            while not (isinstance(stack[-1], tuple)):
                args.append(stack.pop())
            op = stack.pop()[1]
            stack.append(listops_value(op, args[::-1]))
        else:
            raise ValueError(f"not a ListOps token: {t}")
    if len(stack) != 1 or isinstance(stack[0], tuple):
        raise ValueError("the tokens are not one complete expression")
    return stack[0]


@dataclass(frozen=True)
class ListOps(TokenTask):
    """Nested MAX/MIN/MED/SM expressions over digits, left-padded to ``length``; the answer at the last step (chapter 15).

    ``max_depth`` bounds the nesting (the root is depth 1), ``max_args`` the arguments of one operator
    (at least 2); an expression longer than ``length`` is drawn again. ``leaf_prob`` is the chance that
    an argument below the root is a digit rather than a new bracket.
    """

    length: int = 128
    max_depth: int = 4
    max_args: int = 5
    leaf_prob: float = 0.6

    def __post_init__(self):
        validate.positive_int("max_depth", self.max_depth)
        validate.positive_int("max_args", self.max_args, minimum=2)
        validate.probability("leaf_prob", self.leaf_prob)
        validate.positive_int("length", self.length)
        if self.length < 2 + 2:  # "[OP a b ]" is the shortest expression: 4 tokens
            raise ValueError(f"length must be >= 4 (the shortest expression, [OP a b ]), got {self.length}")

    input_vocab = property(lambda self: PAD + 1)
    n_classes = property(lambda self: DIGITS)

    def _expression(self, rng: random.Random, depth: int) -> tuple[list[int], int]:
        op = rng.choice(OPS)
        tokens, args = [OPEN[op]], []
        for _ in range(rng.randint(2, self.max_args)):
            if depth < self.max_depth and rng.random() > self.leaf_prob:
                sub, value = self._expression(rng, depth + 1)
                tokens += sub
            else:
                value = rng.randrange(DIGITS)
                tokens.append(value)
            args.append(value)
        return tokens + [CLOSE], listops_value(op, args)

    def _sample(self, B, g):
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=g)))
        x = torch.full((B, self.length), PAD, dtype=torch.long)
        y = torch.full((B, self.length), IGNORE, dtype=torch.long)
        for b in range(B):
            for _ in range(1000):
                tokens, value = self._expression(rng, 1)
                if len(tokens) <= self.length:
                    break
            else:
                raise ValueError(f"could not draw an expression of at most {self.length} tokens with "
                                 f"max_depth={self.max_depth}, max_args={self.max_args}: raise length")
            x[b, self.length - len(tokens):] = torch.tensor(tokens)
            y[b, -1] = value
        return x, y


# --------------------------------------------------------------------------------------------- Pathfinder
BACKGROUND, CURVE, DOT = 0, 1, 2


@dataclass(frozen=True)
class Pathfinder(TokenTask):
    """Are the two dots joined by a curve? An S × S image read pixel by pixel, T = S² (chapter 15).

    ``size`` S, ``curve_length`` pixels per curve (two curves, never touching each other or
    themselves except step to step). Label 1 (joined) or 0, in equal proportion.
    """

    size: int = 16
    curve_length: int = 14

    def __post_init__(self):
        validate.positive_int("size", self.size, minimum=6)
        validate.positive_int("curve_length", self.curve_length, minimum=3)
        if self.curve_length > self.size * self.size // 6:
            raise ValueError(f"curve_length must be at most size²/6 = {self.size * self.size // 6} so that two "
                             f"curves fit apart in a {self.size}×{self.size} image, got {self.curve_length}")

    input_vocab = property(lambda self: 3)
    n_classes = property(lambda self: 2)

    def _curve(self, rng: random.Random, blocked: set) -> list[tuple[int, int]] | None:
        S = self.size
        free = lambda p: 0 <= p[0] < S and 0 <= p[1] < S and p not in blocked
        start = (rng.randrange(S), rng.randrange(S))
        if not free(start):
            return None
        path, seen = [start], {start}
        direction = rng.choice(((0, 1), (1, 0), (0, -1), (-1, 0)))
        while len(path) < self.curve_length:
            r, c = path[-1]
            options = []
            for d in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                p = (r + d[0], c + d[1])
                # not on or beside the other curve, and touching its own curve only at the current end
                if free(p) and p not in seen and all(
                        (p[0] + e[0], p[1] + e[1]) not in seen or (p[0] + e[0], p[1] + e[1]) == (r, c)
                        for e in ((0, 1), (1, 0), (0, -1), (-1, 0))):
                    options.append(d)
            if not options:
                return None
            direction = direction if direction in options and rng.random() < 0.7 else rng.choice(options)
            p = (r + direction[0], c + direction[1])
            path.append(p)
            seen.add(p)
        return path

    def draw(self, rng: random.Random, joined: bool) -> torch.Tensor:
        """One image (S, S) of pixel values with two curves and two dots, joined or not."""
        S = self.size
        for _ in range(10_000):
            a = self._curve(rng, set())
            if a is None:
                continue
            halo = {(r + dr, c + dc) for r, c in a for dr in (-1, 0, 1) for dc in (-1, 0, 1)}  # a and its 8 neighbours
            b = self._curve(rng, halo)
            if b is None:
                continue
            img = torch.zeros(S, S, dtype=torch.long)
            for r, c in a + b:
                img[r, c] = CURVE
            ends = [a[0], a[-1]] if joined else [rng.choice((a[0], a[-1])), rng.choice((b[0], b[-1]))]
            for r, c in ends:
                img[r, c] = DOT
            return img
        raise RuntimeError(f"could not place two curves of {self.curve_length} pixels in {S}×{S}")

    def _sample(self, B, g):
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=g)))
        labels = torch.randint(0, 2, (B,), generator=g)
        x = torch.stack([self.draw(rng, bool(l)) for l in labels]).reshape(B, -1)  # (B, S²), raster order
        y = torch.full_like(x, IGNORE)
        y[:, -1] = labels
        return x, y


def connected(image: torch.Tensor) -> bool:
    """Whether the two dots of an (S, S) image lie in one 4-connected component of non-background pixels (chapter 15).

    A flood fill, independent of how ``Pathfinder`` drew the image: the test of its labels.
    """
    validate.tensor("image", image, ndim=2)
    dots = [tuple(p) for p in (image == DOT).nonzero().tolist()]
    if len(dots) != 2:
        raise ValueError(f"an image must hold exactly two dots, got {len(dots)}")
    S0, S1 = image.shape
    todo, seen = [dots[0]], {dots[0]}
    while todo:
        r, c = todo.pop()
        for p in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= p[0] < S0 and 0 <= p[1] < S1 and p not in seen and int(image[p]) != BACKGROUND:
                seen.add(p)
                todo.append(p)
    return dots[1] in seen


def patch_tokens(x: torch.Tensor, size: int, patch: int) -> torch.Tensor:
    """Pixel sequences (B, S²) -> patch tokens (B, (S/p)²), each p × p patch one id in [0, 3^(p²)) (chapter 15).

    Patches in raster order; a patch's id is Σ_i v_i 3^i over its pixels in raster order — the
    embedding of that id is ViT's patch embedding of a one-hot-coded patch.
    """
    validate.tensor("x", x, ndim=2, dtype="long")
    validate.positive_int("size", size)
    validate.positive_int("patch", patch)
    if x.shape[1] != size * size:
        raise ValueError(f"x must be (B, size²) = (B, {size * size}), got {tuple(x.shape)}")
    if size % patch:
        raise ValueError(f"patch ({patch}) must divide the image side ({size})")
    if patch > 3:
        raise ValueError(f"patch must be at most 3 (3^(p²) token ids), got {patch}")
    B, n = x.shape[0], size // patch
    p = x.reshape(B, n, patch, n, patch).permute(0, 1, 3, 2, 4).reshape(B, n * n, patch * patch)
    weights = 3 ** torch.arange(patch * patch)
    return (p * weights).sum(-1)  # (B, n²)


def row_vectors(x: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel sequences (B, S²) -> rows (B, S, 3S) of one-hot pixels, one row per step (chapter 15)."""
    validate.tensor("x", x, ndim=2, dtype="long")
    validate.positive_int("size", size)
    if x.shape[1] != size * size:
        raise ValueError(f"x must be (B, size²) = (B, {size * size}), got {tuple(x.shape)}")
    return torch.nn.functional.one_hot(x, 3).float().reshape(x.shape[0], size, 3 * size)
