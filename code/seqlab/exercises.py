"""The exercise notebooks: every chapter with its solutions taken out and stubs to fill in (all chapters).

``python -m seqlab.exercises`` (``make exercises``) writes ``exercises/NN_name.ipynb`` for every
``chapters/NN_name.ipynb``. An exercise notebook is the chapter itself, cell for cell, except in
its exercises:

- a solution of a *coding* exercise — a code cell tagged ``solution`` inside a
  ``{solution-start}`` ... ``{solution-end}`` dropdown that calls a ``seqlab.check`` checker on a
  function it defines — becomes a **stub**: the function's signature (taken from the chapter's
  solution), a docstring stating the contract and the shapes (taken from the checker, the one
  place that contract is written down), a body that raises ``NotImplementedError``, and the
  checker's call, which says "not written yet" until the learner writes it;
- every other solution (conceptual, or "predict, then run": its prose, its code, its
  ``{solution}`` dropdown) is removed, and a line points to the chapter, where it stays collapsed;
  where the solution ran code (an experiment), an empty code cell is left for the learner's own;
- the ``{exercise}`` directives become plain Markdown (Jupyter does not render MyST directives);
- a first note says what the notebook is, and a last cell, ``check.summary(chapter)``, lists
  which checked exercises pass, which are not written yet and which fail, with the hint.

The notebooks are generated, never edited by hand, and committed without outputs (Binder and
Colab open them from the repository); ``python -m seqlab.exercises --check`` fails when one is
out of date (the tests run it).
"""
from __future__ import annotations

import argparse
import ast
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ROOT / "chapters"
EXERCISES = ROOT / "exercises"
SOLUTION_TAG = "solution"
CHAPTER_FILE = re.compile(r"^(\d+)([a-z]?)_\w+\.ipynb$")
FENCE = re.compile(r"^(`{3,})\{(exercise|solution|solution-start|solution-end)\}[ \t]*(\S*)[ \t]*$")


@dataclass(frozen=True)
class CheckedExercise:
    """A coding exercise of a chapter (chapter 1 onward): its label, the checker, and the function the solution defines."""

    chapter: str  # "2", "7b"
    label: str  # the exercise's label, e.g. "ch2-ex-step"
    checker: str  # the checker's name in seqlab.check, e.g. "rnn_step"
    call: str  # the checker as the solution calls it, e.g. "check.rnn_step"
    function: str  # the name of the learner's function, e.g. "rnn_step"
    signature: str  # its arguments, e.g. "x_t, h_prev, W_xh, b_xh, W_hh, b_hh"
    source: str  # the solution's definition of the function (for the tests)


def chapter_id(path: Path | str) -> str:
    """``chapters/07b_encoder_decoder.ipynb`` -> ``"7b"``: the chapter's name in ``seqlab.check`` (chapter 1 onward)."""
    m = CHAPTER_FILE.match(Path(path).name)
    if not m:
        raise ValueError(f"a chapter notebook is named NN_name.ipynb or NNb_name.ipynb, got {Path(path).name!r}")
    return f"{int(m.group(1))}{m.group(2)}"


def chapter_paths(folder: Path | None = None) -> list[Path]:
    """Every chapter notebook in ``folder`` (default: the repository's ``chapters/``), in order (chapter 1 onward)."""
    folder = CHAPTERS if folder is None else Path(folder)
    return sorted(p for p in folder.glob("*.ipynb") if CHAPTER_FILE.match(p.name))


def _split_directives(text: str) -> list[tuple[str, str, str, list[str]]]:
    """Markdown -> pieces ``(kind, name, label, lines)``: kind "text" or a directive ("exercise", "solution", ...).

    A directive runs from its opening fence to the closing fence of the same backticks; its
    option lines (``:label: x``) stay in ``lines``, after the opening line.
    """
    lines = text.split("\n")
    pieces: list[tuple[str, str, str, list[str]]] = []
    plain: list[str] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            plain.append(lines[i])
            i += 1
            continue
        if plain:
            pieces.append(("text", "", "", plain))
            plain = []
        ticks, name, arg = m.groups()
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != ticks:
            j += 1
        if j == len(lines):
            raise ValueError(f"the {{{name}}} directive at line {i + 1} is not closed with {ticks}")
        body = lines[i + 1:j]
        label = arg
        for line in body:
            if line.startswith(":label:"):
                label = line.split(":", 2)[2].strip()
        pieces.append((name, name, label, body))
        i = j + 1
    if plain:
        pieces.append(("text", "", "", plain))
    return pieces


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _checked(cell_source: str, chapter: str, label: str) -> CheckedExercise | None:
    """The first ``check.NAME(fn)`` call of a solution cell whose ``fn`` the cell defines, or None."""
    tree = ast.parse(cell_source)
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        owner = ast.unparse(node.func.value)
        if owner not in ("check", "seqlab.check") or not isinstance(node.args[0], ast.Name):
            continue
        fn = node.args[0].id
        if fn in defs:
            source = ast.get_source_segment(cell_source, defs[fn])
            return CheckedExercise(chapter, label, node.func.attr, ast.unparse(node.func), fn,
                                   ast.unparse(defs[fn].args), source)
    return None


def _walk(nb, chapter: str):
    """Yield ``(cell, pieces, solution_label)``: each cell with its directives, and the solution it lies in."""
    inside = None  # the label of the open {solution-start}, if any
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            tagged = SOLUTION_TAG in _tags(cell)
            if tagged != (inside is not None):
                where = f"chapter {chapter}, cell {index} (id {cell.get('id')})"
                if tagged:
                    raise ValueError(f"{where} is tagged {SOLUTION_TAG!r} but lies outside a solution dropdown")
                raise ValueError(f"{where} lies inside the solution of {inside!r}: tag it {SOLUTION_TAG!r} "
                                 f"(cell metadata tags), so that the exercise notebook leaves it out")
            yield cell, None, inside
            continue
        pieces = _split_directives(cell.source) if cell.cell_type == "markdown" else [("text", "", "", [cell.source])]
        states = []
        for piece in pieces:
            kind, _, label, _ = piece
            if kind == "solution-start":
                inside = label
            states.append((piece, inside))
            if kind == "solution-end":
                inside = None
        yield cell, states, inside
    if inside is not None:
        raise ValueError(f"chapter {chapter}: the solution of {inside!r} is never closed with {{solution-end}}")


def checked_exercises(nb, chapter: str) -> list[CheckedExercise]:
    """The chapter's coding exercises checked by ``seqlab.check``, in order (chapter 1 onward)."""
    found = []
    for cell, _, inside in _walk(nb, chapter):
        if cell.cell_type == "code" and inside is not None:
            ex = _checked(cell.source, chapter, inside)
            if ex is not None and all(e.label != ex.label for e in found):
                found.append(ex)
    return found


def _contract(checker: str, function: str) -> str:
    """The checker's docstring, in the learner's words: the contract and the shapes of ``function``."""
    from seqlab import check

    doc = getattr(check, checker).__doc__ or ""
    lines = doc.strip("\n").split("\n")
    rest = [line[4:] if line.startswith("    ") else line.lstrip() for line in lines[1:]]
    text = "\n".join([lines[0].strip()] + rest).strip()
    text = re.sub(r"^Chapter \d+(?: \(section \d+\.\d+\))?: *", "", text)
    text = re.sub(r"\bfn\(", f"{function}(", text).replace("``", "`")
    if '"""' in text:
        raise ValueError(f"the docstring of check.{checker} contains triple quotes")
    return text


def stub_source(ex: CheckedExercise) -> str:
    """The stub of a checked exercise: signature, contract, ``NotImplementedError``, the checker's call (chapter 1 onward)."""
    doc = "\n".join(("    " + line) if line else "" for line in _contract(ex.checker, ex.function).split("\n"))
    prefix = "r" if "\\" in doc else ""
    return (f"def {ex.function}({ex.signature}):\n"
            f'    {prefix}"""{doc.lstrip()}\n    """\n'
            f'    raise NotImplementedError("write {ex.function}: replace this line with your code")\n'
            f"\n\n"
            f"{ex.call}({ex.function})")


def _code(source: str, cell_id: str):
    cell = nbformat.v4.new_code_cell(source)
    cell["id"] = cell_id
    return cell


def _markdown(source: str, cell_id: str):
    cell = nbformat.v4.new_markdown_cell(source)
    cell["id"] = cell_id
    return cell


def exercise_notebook(nb, path: Path | str):
    """The exercise notebook of the chapter ``nb`` read from ``path`` (chapter 1 onward; ``nb`` is unchanged)."""
    chapter = chapter_id(path)
    name = Path(path).name
    link = f"../chapters/{name}"
    checked = {e.label: e for e in checked_exercises(nb, chapter)}
    experiments = {inside for cell, _, inside in _walk(nb, chapter) if cell.cell_type == "code" and inside}
    out = copy.deepcopy(nb)
    cells = []
    number = 0

    def solution_note(label: str) -> list[str]:
        return ["", f"*Solution:* collapsed under this exercise on the chapter's page of the book, and in the "
                    f"chapter notebook [{name}]({link}) (exercise `{label}`).", ""]

    for cell, states, inside in _walk(nb, chapter):
        if cell.cell_type == "code":
            if inside is None:
                cells.append(cell)
            continue
        if not any(kind != "text" for (kind, *_), _ in states):  # no directive: the cell as it is
            if inside is None:
                cells.append(cell)
            continue
        text: list[str] = []
        parts = 0

        def flush():
            nonlocal text, parts
            body = re.sub(r"\n{3,}", "\n\n", "\n".join(text)).strip("\n")
            if body.strip():
                cells.append(_markdown(body, cell.get("id", "md") if parts == 0 else f"{cell.get('id', 'md')}-{parts}"))
                parts += 1
            text = []

        for (kind, _, label, lines), state in states:
            if kind == "text":
                if state is None:
                    text.extend(lines)
            elif kind == "exercise":
                number += 1
                body = "\n".join(line for line in lines if not line.startswith(":")).strip("\n").split("\n")
                text.extend([f"**Exercise {number}** (`{label}`)", ""] + body)
            elif kind == "solution":
                text.extend(solution_note(label))
            elif kind == "solution-start":
                text.extend(solution_note(label))
            elif kind == "solution-end":
                ex = checked.get(state)  # the state of a {solution-end} is the label it closes
                if ex is not None:
                    flush()
                    cells.append(_code(stub_source(ex), f"stub-{ex.label}"))
                elif state in experiments:  # "predict, then run": a cell for the learner's own run
                    flush()
                    cells.append(_code("# Your prediction first (write it down), then your experiment:\n",
                                       f"try-{state}"))
        flush()

    intro = _markdown(
        f"> **Exercise notebook** of this chapter: the chapter itself, with its solutions taken out. Run it "
        f"from the top, then fill in the stubs under *Exercises*: each one calls a `seqlab.check` checker, "
        f"which says \"not written yet\", names the mistake it recognises, or confirms your answer. The last "
        f"cell shows where you stand. The solutions are collapsed under each exercise in the book, and "
        f"written out in the chapter notebook [{name}]({link}).\n>\n"
        f"> This file is generated from the chapter by `make exercises`; your answers live only in your copy.",
        "exercise-notebook")
    first_heading = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"
                          and c.source.lstrip().startswith("# ")), -1)
    cells.insert(first_heading + 1, intro)
    cells.append(_markdown("## Where you stand\n\nWhich checked exercises of this chapter pass, which are not "
                           "written yet, and which fail (with the hint). Run it again after each one.",
                           "where-you-stand"))
    cells.append(_code(f'check.summary("{chapter}")', "summary"))
    out.cells = copy.deepcopy(cells)
    out.metadata.setdefault("seqlab", {})["exercises_of"] = f"chapters/{name}"
    return out


def render(nb) -> str:
    """A notebook as the repository stores it: nbformat's JSON, a line per source line (chapter 1 onward)."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def build(chapters: Path | None = None) -> dict[str, str]:
    """``{file name: notebook text}`` of every exercise notebook, from the chapters in ``chapters`` (default: the
    repository's ``chapters/``) (chapter 1 onward)."""
    return {p.name: render(exercise_notebook(nbformat.read(p, as_version=4), p)) for p in chapter_paths(chapters)}


def tag_solutions(path: Path) -> int:
    """Tag ``solution`` every untagged code cell inside a solution dropdown of a chapter; the count (chapter 1 onward).

    The chapter's JSON is edited in place with its key order and layout kept, so that the diff
    shows only the tags.
    """
    import json

    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    inside, added = None, 0
    for cell in nb["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            for kind, _, label, _ in _split_directives(source):
                inside = label if kind == "solution-start" else (None if kind == "solution-end" else inside)
        elif cell["cell_type"] == "code" and inside is not None:
            tags = cell.setdefault("metadata", {}).setdefault("tags", [])
            if SOLUTION_TAG not in tags:
                tags.append(SOLUTION_TAG)
                added += 1
    if added:
        text = json.dumps(nb, indent=1, ensure_ascii=False) + ("\n" if raw.endswith("\n") else "")
        path.write_text(text, encoding="utf-8")
    return added


def main(argv: list[str] | None = None) -> int:
    """``python -m seqlab.exercises [--check] [--out DIR]``: write the exercise notebooks, or check them (chapter 1 onward)."""
    parser = argparse.ArgumentParser(prog="python -m seqlab.exercises", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail if an exercise notebook is out of date")
    parser.add_argument("--out", type=Path, default=EXERCISES, help="the folder to write (default: exercises/)")
    parser.add_argument("--tag-solutions", action="store_true",
                        help="first tag 'solution' every untagged code cell inside a chapter's solution dropdown")
    args = parser.parse_args(argv)
    if args.tag_solutions:
        for path in chapter_paths():
            if (n := tag_solutions(path)):
                print(f"tagged {n} solution cell(s) in {path.name}")
    wanted = build()
    stale = [name for name, text in wanted.items()
             if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text]
    extra = sorted(p.name for p in args.out.glob("*.ipynb") if p.name not in wanted) if args.out.is_dir() else []
    if args.check:
        if stale or extra:
            print(f"out of date: {stale}; without a chapter: {extra}. Run `make exercises`.", file=sys.stderr)
            return 1
        print(f"all {len(wanted)} exercise notebooks are up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (args.out / name).write_text(wanted[name], encoding="utf-8")
    for name in extra:
        (args.out / name).unlink()
    print(f"wrote {len(stale)} of {len(wanted)} exercise notebooks to {args.out}" + (f"; removed {extra}" if extra else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
