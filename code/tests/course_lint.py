"""The course lint: does a chapter notebook follow the template of DESIGN.md?

``problems(nb)`` lists what a notebook lacks; an empty list means it passes.
``number_problems(nb)`` lists the figures quoted in its prose that do not come
from the page (see ``prose_numbers``); it applies to the chapters in
``NUMBERS_CHECKED``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPTER_NAME = re.compile(r"^\d\d[a-z]?_[a-z0-9_]+\.ipynb$")  # NN_name, or NNb_name for a section of chapter NN
EXERCISE = re.compile(r"```\{exercise\}[^\n]*\n:label: *([\w-]+)")
SOLUTION = re.compile(r"```\{solution(?:-start)?\} *([\w-]+)")


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def toc_files(root: Path = ROOT) -> list[str]:
    """The ``file:`` entries of ``_toc.yml`` (parsed as text, to need no YAML library)."""
    text = (root / "_toc.yml").read_text(encoding="utf-8")
    return re.findall(r"^\s*-?\s*file:\s*(\S+)\s*$", text, flags=re.M)


def problems(nb: dict) -> list[str]:
    """What this chapter notebook lacks of the template."""
    out = []
    cells = nb.get("cells", [])
    code = [c for c in cells if c.get("cell_type") == "code"]
    md = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells if c.get("cell_type") == "markdown")
    src = lambda c: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    for c in code:
        if c.get("outputs") or c.get("execution_count") is not None:
            out.append("committed with outputs or execution counts (strip them)")
            break
    if not cells or cells[0].get("cell_type") != "markdown" or not src(cells[0]).lstrip().startswith("# "):
        out.append("the first cell must be markdown starting with the title ('# ...')")
    for part in ("Learning objectives", "Prerequisites", "## Summary", "## Exercises", "## References"):
        if part not in md:
            out.append(f"missing the template part {part!r}")
    if not code or "except ImportError" not in src(code[0]) or "seqlab" not in src(code[0]):
        out.append("the first code cell must install seqlab when it is missing (the Colab cell)")
    all_code = "\n".join(src(c) for c in code)
    if "seed_everything(" not in all_code:
        out.append("no seqlab.seed_everything(...) call: the notebook is not seeded")
    if "scale(" not in all_code:
        out.append("no seqlab.scale(quick=..., full=...) call")
    if not re.search(r"^\s*assert\b", all_code, flags=re.M):
        out.append("no assert: the chapter checks none of its claims")
    exercises = EXERCISE.findall(md)
    solutions = set(SOLUTION.findall(md))
    if len(exercises) < 3:
        out.append(f"needs at least 3 exercises, has {len(exercises)}")
    for label in exercises:
        if label not in solutions:
            out.append(f"exercise {label!r} has no solution")
    if "check." not in all_code:
        out.append("no exercise is checked by a seqlab.check helper")
    return out


def exercise_labels(nb: dict) -> list[str]:
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    return EXERCISE.findall(md)



# --- every number on a page comes from that page ---------------------------
#
# A measured quantity in markdown prose must be glued from the variable that
# holds it ({glue:text}`name:.2f`) or stated in words and asserted. The lint
# cannot tell a measurement from a setting, so it flags the shapes that
# measurements take -- a decimal number ("1.9 bits"), a ratio ("10×", "10x")
# or a share ("50 %") -- in the prose that is left once these are removed:
#
# - code: fenced blocks (```python), indented blocks, inline `code` spans;
# - math: $$...$$ blocks and inline $...$ (a formula's constants are not
#   quotes of a measurement; put a measured value in math only through glue);
# - roles such as {glue:text}`...`, {term}`...`, {doc}`...` and link targets;
# - a sentence that cites a paper with {cite}/{cite:p}/{cite:t}: a figure in it
#   is the paper's, quoted as such ("Shannon estimated about 1 bit per
#   character {cite:p}`shannon1951prediction`");
# - SETTINGS below: a decimal right after the name of a setting (a learning
#   rate, a temperature, ...), or after a word that numbers a part of the book
#   or a version ("section 3.2", "equation 2.1", "Python 3.12").
#
# Whole numbers are never flagged: chapter numbers, years, "2-layer", "lag 40",
# "4,000 tokens" are settings or counts. Directive fences ({exercise},
# {solution}, {note}) are prose: their contents are checked, their options
# (":label:", ":class:") are not.

NUMBERS_CHECKED = (
    "01", "02", "03", "04", "05", "06", "07", "07b", "08", "09", "10", "11", "12", "13", "13b", "14", "15",
)

#: A decimal that follows one of these words is a setting or a reference, not a measurement.
SETTINGS = (
    r"learning rates?", r"lr", r"temperatures?", r"dropout", r"weight decay", r"momentum",
    r"thresholds?", r"clip(?:ping)?(?: at| norm)?", r"biase?s?", r"k",
    r"sections?", r"§", r"equations?", r"eqs?\.", r"figures?", r"tables?", r"python", r"versions?",
)
_SETTING_BEFORE = re.compile(r"(?:\b(?:" + "|".join(SETTINGS) + r"))\s*(?:of|=|at|is)?\s*[(\[]?$", re.I)

FORBIDDEN_WORDS = (
    (re.compile(r"seed material", re.I), "the seed material"),
    (re.compile(r"source material", re.I), "the source material"),
    (re.compile(r"seed's claim", re.I), "the seed's claim"),
    (re.compile(r"CALIBRATION"), "CALIBRATION"),
)

_FIGURE = re.compile(
    r"(?<![\w.])(?P<num>\d+\.\d+)(?![\w.]*\d)"            # a decimal number: 1.9, 0.05
    r"|(?<![\w.])(?P<times>\d+(?:\.\d+)?\s?(?:×|x\b))(?!\s?\d)"  # a ratio: 10×, 2.5 ×, 10x (not 2×2)
    r"|(?<!\d)(?<!\d\s)(?P<times2>×\s?\d+)"             # ×4
    r"|(?<![\w.])(?P<pct>\d+(?:\.\d+)?\s?(?:%|percent\b))"  # a share: 50 %, 3%
)
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
_ROLE = re.compile(r"\{([\w:.-]+)\}`[^`]*`")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(?:\\.|[^$\\])+?\$")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[A-Z(\[*_\-–—•])|\n\s*[-*|]\s|\n\s*\d+\.\s")
CITE = "\u27e6cite\u27e7"


def _strip_blocks(markdown: str) -> str:
    """Drop fenced and indented code; keep the contents of directives, without their options."""
    out, fence, in_directive_head = [], None, False
    for line in markdown.splitlines():
        m = _FENCE.match(line)
        if fence is not None:                              # inside a code block
            if m and m.group(2)[0] == fence[0] and len(m.group(2)) >= len(fence) and not m.group(3).strip():
                fence = None
            continue
        if m:
            info = m.group(3).strip()
            if info.startswith("{") and not info.startswith(("{code", "{glue")):
                in_directive_head = True                  # ```{exercise}: its body is prose
                out.append("")
                continue
            if not info:                                   # a closing fence of a directive
                out.append("")
                continue
            fence = m.group(2)                             # ```python: code
            continue
        if in_directive_head and re.match(r"^\s*:[\w-]+:", line):
            continue                                       # :label: ..., :class: dropdown
        in_directive_head = False
        if re.match(r"^( {4,}|\t)", line) and not re.match(r"^\s*([-*+]|\d+\.)\s", line):
            out.append("")                                 # an indented code block
            continue
        out.append(line)
    return "\n".join(out)


def prose_sentences(markdown: str) -> list[str]:
    """The sentences of a markdown cell with code, math, roles and link targets removed.

    A sentence that cites a paper keeps the marker ``CITE`` in place of the citation."""
    text = _strip_blocks(markdown)
    text = re.sub(r"<!--.*?-->", " ", text, flags=re.S)
    text = _DISPLAY_MATH.sub(" ", text)
    text = _ROLE.sub(lambda m: f" {CITE} " if m.group(1).startswith("cite") else " ", text)
    text = _INLINE_CODE.sub(" ", text)
    text = _INLINE_MATH.sub(" ", text)
    text = _LINK_TARGET.sub("]", text)
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        sentences += [s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip()]
    return sentences


def prose_numbers(markdown: str) -> list[tuple[str, str]]:
    """(figure, sentence) for each decimal, ratio or share in the prose of this markdown.

    Empty when every number quoted is glued, in math or code, a paper's (cited in
    the same sentence), a setting named just before it, or a whole number."""
    found = []
    for sentence in prose_sentences(markdown):
        if CITE in sentence:
            continue
        for m in _FIGURE.finditer(sentence):
            if m.group("num") and _SETTING_BEFORE.search(sentence[: m.start()]):
                continue
            found.append((m.group(0).strip(), re.sub(r"\s+", " ", sentence)))
    return found


def number_problems(nb: dict) -> list[str]:
    """Figures in the prose not glued from the page, and words the reader has no way to look up."""
    out = []
    for cell in nb.get("cells", []):
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for pattern, words in FORBIDDEN_WORDS:
            if pattern.search(text):
                out.append(f"mentions {words!r}, which the reader has never seen")
        if cell.get("cell_type") == "markdown":
            for figure, sentence in prose_numbers(text):
                out.append(f"number {figure!r} in prose is not glued from the page: {sentence[:120]!r}")
    return out
