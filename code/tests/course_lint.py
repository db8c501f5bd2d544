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

from seqlab.claims import CITED as _CLAIM_ROLE, MADE as _CLAIM_CALL  # how a page writes its claims: one definition

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
    ids = [c.get("id") for c in cells]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        out.append(f"cell ids must be unique (nbformat renames a repeated one on every read): {repeated}")
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


# --- the evidence box: each summary bullet names the claims behind it --------
#
# A converted chapter ends with a markdown cell "## What this page measured" and
# a last code cell calling ``seqlab.evidence_box()`` (``code/seqlab/claims.py``),
# rendered as a MyST table (cell metadata ``mystnb: {markdown_format: myst}``).
# Its claims are made with literal names, ``claim("name", ...)``, each name once;
# every bullet of its "## Summary" names at least one of them with the role
# {claim}`name`, and every {claim} role on the page names a claim the page makes.
# The lint applies to every chapter that has an evidence box; the chapters in
# EVIDENCE_TODO have not been converted yet (the list only shrinks).

EVIDENCE_TODO = ()
EVIDENCE_HEADING = "## What this page measured"
_ANY_CLAIM_CALL = re.compile(r"(?<![\w.])(?:seqlab\.|claims\.)?claim\(")
_GLUE_CALL = re.compile(r"\bglue\(\s*(?P<q>[\"'])(?P<name>[^\"']*)(?P=q)")


def _text(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def has_evidence_box(nb: dict) -> bool:
    return any(c.get("cell_type") == "code" and "evidence_box(" in _text(c) for c in nb.get("cells", []))


def claim_names(nb: dict) -> list[str]:
    """The literal names of the claims the code cells make, in order (with repeats, if any)."""
    return [m.group("name") for c in nb.get("cells", []) if c.get("cell_type") == "code"
            for m in _CLAIM_CALL.finditer(_text(c))]


def summary_bullets(nb: dict) -> list[str]:
    """The top-level bullets of the '## Summary' section, each with its continuation lines joined."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown" or "## Summary" not in _text(cell):
            continue
        section = _text(cell).split("## Summary", 1)[1]
        section = re.split(r"^#{1,2} ", section, maxsplit=1, flags=re.M)[0]
        bullets: list[str] = []
        open_ = False
        for line in section.splitlines():
            if re.match(r"^[-*+] |^\d+\. ", line):
                bullets.append(line)
                open_ = True
            elif not line.strip():
                open_ = False                   # a blank line ends the bullet
            elif open_:
                bullets[-1] += " " + line.strip()
        return [b for b in bullets if b]
    return []


def evidence_problems(nb: dict) -> list[str]:
    """What a chapter's evidence box lacks: the closing table, literal unique claims, a claim behind every summary bullet."""
    out = []
    cells = nb.get("cells", [])
    if not has_evidence_box(nb):
        return [f"no evidence box: end the page with {EVIDENCE_HEADING!r} and a code cell calling seqlab.evidence_box()"]
    last = cells[-1] if cells else {}
    if last.get("cell_type") != "code" or "evidence_box(" not in _text(last):
        out.append("the evidence box (seqlab.evidence_box()) must be the page's last cell")
    else:
        if last.get("metadata", {}).get("mystnb", {}).get("markdown_format") != "myst":
            out.append("the evidence box's cell needs metadata mystnb: {markdown_format: myst}, or the table renders as text")
        if len(cells) < 2 or cells[-2].get("cell_type") != "markdown" or EVIDENCE_HEADING not in _text(cells[-2]):
            out.append(f"the cell before the evidence box must be markdown with the heading {EVIDENCE_HEADING!r}")
    code = [_text(c) for c in cells if c.get("cell_type") == "code"]
    names = claim_names(nb)
    n_calls = sum(len(_ANY_CLAIM_CALL.findall(src)) for src in code)
    if n_calls != len(names):
        out.append(f"{n_calls - len(names)} claim(...) call(s) without a literal name: write claim(\"name\", ...) so the lint can see it")
    if not names:
        out.append("the page makes no claim: write seqlab.claim(name, text, value, rule) where the prose claims")
    for name in sorted({n for n in names if names.count(n) > 1}):
        out.append(f"claim {name!r} is made in more than one place (its glue key would be duplicated)")
    glued = {m.group("name") for src in code for m in _GLUE_CALL.finditer(src)}
    for name in sorted(glued & set(names)):
        out.append(f"{name!r} is glued and also claimed: claim() glues its value, so drop the glue call")
    bullets = summary_bullets(nb)
    if not bullets:
        out.append("the summary has no bullets")
    for bullet in bullets:
        named = _CLAIM_ROLE.findall(bullet)
        if not named:
            out.append(f"summary bullet names no claim ({{claim}}`name`): {bullet[:100]!r}")
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for name in _CLAIM_ROLE.findall(_text(cell)):
                if name not in names:
                    out.append(f"{{claim}}`{name}` names no claim the page makes")
    return out


# --- figures: every figure of a gated chapter is checked when it is drawn ---
#
# ``seqlab.plot.use_style(check=True)`` checks each figure at the end of the cell
# that drew it (title, axis labels, colour bars, tick labels that do not
# overlap: ``seqlab.plot.check_figure``) and fails that cell, so the notebook
# run (nbval, the book build) fails on an unfinished figure. Every chapter not in
# FIGURES_TODO must switch the check on; the list only shrinks.

FIGURES_TODO = ()
_CHECKED_STYLE = re.compile(r"use_style\(\s*check\s*=\s*True\s*\)")


def checks_its_figures(nb: dict) -> bool:
    return any(c.get("cell_type") == "code" and _CHECKED_STYLE.search(_text(c)) for c in nb.get("cells", []))
