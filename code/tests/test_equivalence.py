"""The equivalence harness: every pair of forms of every registered mixer family, over one grid of awkward shapes.

For each family, case and non-reference form, the form and the family's
reference (the readable loop) get the same problem; their outputs, final
states and the gradients of every input, parameter and initial state must
agree to a tolerance set by the dtype. A family added to
``seqlab.ops.FAMILIES`` gets this whole battery without a new test.
"""
from __future__ import annotations

import re
import zlib

import pytest
import torch

import seqlab.ops as ops

TOL = {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=1e-4, atol=1e-5)}


def _leaves(tree):
    """The tensors of a state (a tensor, a tuple/list of them, or None), in order."""
    if tree is None:
        return []
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, (tuple, list)):
        return [t for item in tree for t in _leaves(item)]
    raise TypeError(f"a state must be a tensor, a tuple of tensors or None, got {type(tree).__name__}")


def _fresh(problem: ops.Problem) -> tuple[ops.Problem, list[torch.Tensor]]:
    """A copy of ``problem`` whose floating tensors are new leaves that require grad (returned too)."""
    leaves = []

    def leaf(t):
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            t = t.detach().clone().requires_grad_(True)
            leaves.append(t)
        return t

    def tree(s):
        if isinstance(s, (tuple, list)):
            return type(s)(tree(x) for x in s)
        return leaf(s)

    new = ops.Problem(inputs={k: tree(v) for k, v in problem.inputs.items()},
                      params={k: tree(v) for k, v in problem.params.items()},
                      state=tree(problem.state), options=dict(problem.options))
    return new, leaves


def _run(family, form, problem, probe):
    p, leaves = _fresh(problem)
    y, state = ops.run_form(family, form, p)
    outs = [y] + _leaves(state)
    loss = sum((o * w).sum() for o, w in zip(outs, probe(outs)))
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return outs, grads


CASES = [(fam, form, case) for fam in sorted(ops.FAMILIES) for form in sorted(ops.FAMILIES[fam].forms)
         if form != ops.FAMILIES[fam].reference for case in ops.GRID]


@pytest.mark.parametrize("family,form,case", CASES, ids=[f"{f}-{m}-{c}" for f, m, c in CASES])
def test_form_equals_reference(family, form, case):
    fam = ops.FAMILIES[family]
    if not fam.supports(case, form):
        pytest.skip(f"{family}.{form} does not take case {case}")
    g = torch.Generator().manual_seed(zlib.crc32(str(case).encode()))
    problem = fam.make(case, g)
    weights = {}

    def probe(outs):  # one fixed random weighting of every output, shared by both forms
        if not weights:
            weights["w"] = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]
        return weights["w"]

    ref_outs, ref_grads = _run(fam, fam.reference, problem, probe)
    outs, grads = _run(fam, form, problem, probe)
    assert len(outs) == len(ref_outs), f"{family}.{form} returns {len(outs)} tensors, the reference {len(ref_outs)}"
    for i, (a, b) in enumerate(zip(outs, ref_outs)):
        what = "output y" if i == 0 else f"final state tensor {i - 1}"
        assert a.shape == b.shape, f"{family}.{form}: {what} has shape {tuple(a.shape)}, reference {tuple(b.shape)}"
        torch.testing.assert_close(a, b, **TOL[case.dtype], msg=lambda m: f"{family}.{form} {what}: {m}")
    for i, (a, b) in enumerate(zip(grads, ref_grads)):
        if a is None and b is None:
            continue
        assert a is not None and b is not None, f"{family}.{form}: gradient {i} is None on one side only"
        torch.testing.assert_close(a, b, **TOL[case.dtype], msg=lambda m: f"{family}.{form} gradient {i}: {m}")


def test_the_course_families_are_registered():
    """Importing seqlab.ops registers every family, so the grid above is not silently empty."""
    assert {"rnn", "rnn_relu", "lstm", "gru", "softmax_attention"} <= set(ops.FAMILIES)
    assert set(ops.FAMILIES["lstm"].forms) == {"loop", "stream", "fused"}
    assert set(ops.FAMILIES["softmax_attention"].forms) == {"loop", "parallel", "stream", "fused"}
    assert len(CASES) >= len(ops.GRID) * (4 * 2 + 3)  # non-reference forms of the five families


def test_every_family_is_registered_under_the_chapter_its_loop_names():
    """The registry's chapter of a family is the chapter its reference form's docstring says introduces it (here, in
    the harness every ops mutant runs, so that a registry entry's chapter is checked whichever file registers it)."""
    for name, family in ops.FAMILIES.items():
        doc = family.forms[family.reference].__doc__ or ""
        chapters = [int(c) for c in re.findall(r"chapter (\d+)", doc)]
        assert chapters and chapters[0] == family.chapter, (name, family.chapter, chapters)


def test_registry_rejects_bad_families():
    with pytest.raises(ValueError, match="reference form"):
        ops.Family(name="x", chapter=0, forms={"a": abs, "b": abs}, make=None)
    with pytest.raises(ValueError, match="at least two forms"):
        ops.Family(name="x", chapter=0, forms={"loop": abs}, make=None)
    with pytest.raises(TypeError, match="expects a Family"):
        ops.register_family("lstm")



def _slices_of_length(t: torch.Tensor, T: int) -> list[str]:
    """Every select or slice node in the autograd graph behind ``t`` that reads a tensor with a dimension of T."""
    seen, stack, found = set(), [t.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        name = type(node).__name__
        if name in ("SelectBackward0", "SliceBackward0") and T in tuple(node._saved_self_sym_sizes):
            found.append(name)
        stack.extend(n for n, _ in node.next_functions)
    return found


@pytest.mark.parametrize("family_name", sorted(ops.FAMILIES))
def test_step_by_step_forms_take_their_inputs_without_a_slice_per_step(family_name):
    """A loop that reads ``x[:, t]`` adds, in the backward pass, a gradient the size of the whole input for every
    step: O(T²) hidden in a linear loop (chapter 9). The forms take their steps and chunks with ``unbind``/``split``
    (one node for all of them): the select and slice nodes that read a tensor of the sequence's length (a final
    state's ``[:, -1]``, an unpadding ``[:, :T]``) are as many at T = 17 as at T = 13, not one more per step."""
    family = ops.FAMILIES[family_name]

    def counts(T):  # T prime: no other size of the problem, and not a multiple of the chunk
        problem = family.make(ops.Case(B=2, T=T, D=4, H=4, chunk=4), torch.Generator().manual_seed(0))
        inputs = {k: v.detach().requires_grad_() if v.is_floating_point() else v for k, v in problem.inputs.items()}
        problem = ops.Problem(inputs=inputs, params=problem.params, state=problem.state, options=problem.options)
        return {form: len(_slices_of_length(ops.run_form(family, form, problem)[0], T)) for form in family.forms}

    short, long = counts(13), counts(17)
    if family_name == "softmax_attention":  # its loop reads each query's visible prefix of keys, K[:, :, :t + 1]: a slice
        short.pop("loop"), long.pop("loop")  # per query, O(T² d) like the attention itself, not a hidden extra order
    assert long == short


def test_the_chunked_scans_backward_leaves_the_upstream_gradient_alone():
    """``linear_scan_chunked``'s backward reads the gradient autograd hands it and must not write over it: that
    tensor may be the caller's (``y.backward(g)``) or an expanded one (``y.sum().backward()``)."""
    from seqlab.ops import ssm as ops_ssm
    g = torch.Generator().manual_seed(5)
    a = torch.rand(2, 6, 3, generator=g, dtype=torch.float64).requires_grad_()   # T = 6: whole chunks of 3
    b = torch.randn(2, 6, 3, generator=g, dtype=torch.float64).requires_grad_()
    h0 = torch.randn(2, 3, generator=g, dtype=torch.float64)
    hs = ops_ssm.linear_scan_chunked(a, b, h0, 3)
    upstream = torch.randn(hs.shape, generator=g, dtype=torch.float64)
    kept = upstream.clone()
    hs.backward(upstream)
    assert torch.equal(upstream, kept)
    grads = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    ops_ssm.linear_scan_chunked(a, b, h0, 3).mul(kept).sum().backward()    # the same gradient, through a product
    torch.testing.assert_close((a.grad, b.grad), grads)
    a.grad = b.grad = None
    ops_ssm.linear_scan_chunked(a, b, h0, 3).sum().backward()             # an expanded upstream gradient
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
