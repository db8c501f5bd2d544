"""seqlab's RNN, LSTM and GRU give the same numbers as nn.RNN, nn.LSTM and nn.GRU.

Outputs, final states and the gradients of every parameter, of the input and of
the initial state are compared over shapes that hide bugs (input width != hidden
width, B = 1, T = 1, several layers, with and without an initial state). The
recurrent language model's streaming ``generate`` and ``step`` are compared with
re-running ``forward`` on the whole prefix.
"""
import re

import pytest
import torch
from torch import nn

from seqlab.models import GRU, LSTM, RNN, GRUCell, LSTMCell, RecurrentLM, RNNCell
from seqlab.ops import recurrent as recurrent_ops

TOL = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-12, rtol=1e-10)}

# kind -> (seqlab layer, torch layer factory, seqlab cell, torch cell factory, our parameter -> torch parameter)
RNN_NAMES = {"W_xh": "weight_ih", "W_hh": "weight_hh", "b_xh": "bias_ih", "b_hh": "bias_hh"}
GATED_NAMES = {"W_x": "weight_ih", "W_h": "weight_hh", "b_x": "bias_ih", "b_h": "bias_hh"}
KINDS = {
    "rnn_tanh": (RNN, lambda D, H, L: nn.RNN(D, H, L, batch_first=True),
                 RNNCell, lambda D, H: nn.RNNCell(D, H), RNN_NAMES),
    "rnn_relu": (RNN, lambda D, H, L: nn.RNN(D, H, L, nonlinearity="relu", batch_first=True),
                 RNNCell, lambda D, H: nn.RNNCell(D, H, nonlinearity="relu"), RNN_NAMES),
    "lstm": (LSTM, lambda D, H, L: nn.LSTM(D, H, L, batch_first=True),
             LSTMCell, lambda D, H: nn.LSTMCell(D, H), GATED_NAMES),
    "gru": (GRU, lambda D, H, L: nn.GRU(D, H, L, batch_first=True),
            GRUCell, lambda D, H: nn.GRUCell(D, H), GATED_NAMES),
}

# (B, T, D, H, L, with initial state)
SHAPES = [
    (1, 1, 3, 5, 1, False),  # B = 1, T = 1
    (1, 1, 4, 4, 2, True),
    (1, 7, 4, 6, 2, True),  # B = 1
    (3, 1, 6, 2, 3, True),  # T = 1, three layers, D > H
    (2, 9, 5, 3, 2, False),
    (4, 5, 2, 7, 1, True),
    (3, 6, 7, 4, 3, False),
]


def torch_name(kind: str, ours: str) -> str:
    """``cells.1.W_x`` -> ``weight_ih_l1``."""
    _, k, p = ours.split(".")
    return f"{KINDS[kind][4][p]}_l{k}"


def make_state(kind, shape, dtype):
    if kind == "lstm":
        return tuple(torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(2))
    return torch.randn(shape, dtype=dtype, requires_grad=True)


def as_tuple(state):
    return state if isinstance(state, tuple) else (state,)


def run_and_backward(module, x, state, weights):
    """Forward, then backpropagate a fixed random weighting of outputs and final states."""
    out, final = module(x) if state is None else module(x, state)
    w_out, *w_state = weights
    loss = (out * w_out).sum() + sum((s * w).sum() for s, w in zip(as_tuple(final), w_state))
    loss.backward()
    return out, as_tuple(final)


def compare_layers(kind, B, T, D, H, L, with_state, dtype, form="loop"):
    torch.manual_seed(0)
    ours_cls, theirs_fn, *_ = KINDS[kind]
    theirs = theirs_fn(D, H, L).to(dtype)
    ours = ours_cls.from_torch(theirs)
    ours.form = form
    assert all(p.dtype == dtype for p in ours.parameters())

    x = torch.randn(B, T, D, dtype=dtype)
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    n_final = 2 if kind == "lstm" else 1  # (h, c) or h
    s_ours = s_theirs = None
    if with_state:
        s = [torch.randn(L, B, H, dtype=dtype) for _ in range(n_final)]
        s_ours, s_theirs = ([t.clone().requires_grad_() for t in s] for _ in range(2))
        s_ours, s_theirs = (tuple(v) if kind == "lstm" else v[0] for v in (s_ours, s_theirs))
    weights = [torch.randn(B, T, H, dtype=dtype)] + [torch.randn(L, B, H, dtype=dtype) for _ in range(n_final)]

    out_o, fin_o = run_and_backward(ours, x_ours, s_ours, weights)
    out_t, fin_t = run_and_backward(theirs, x_theirs, s_theirs, weights)
    tol = TOL[dtype]

    assert out_o.shape == out_t.shape == (B, T, H)
    torch.testing.assert_close(out_o, out_t, **tol)
    assert len(fin_o) == len(fin_t) == n_final
    for a, b in zip(fin_o, fin_t):
        assert a.shape == b.shape == (L, B, H)
        torch.testing.assert_close(a, b, **tol)
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, **tol)
    if with_state:
        for a, b in zip(as_tuple(s_ours), as_tuple(s_theirs)):
            torch.testing.assert_close(a.grad, b.grad, **tol)

    # every parameter, on both sides, is paired exactly once
    theirs_params = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert sorted(torch_name(kind, n) for n in ours_params) == sorted(theirs_params)
    total = 0.0
    for name, p in ours_params.items():
        q = theirs_params[torch_name(kind, name)]
        torch.testing.assert_close(p.grad, q.grad, **tol, msg=lambda m: f"gradient of {name}: {m}")
        total += p.grad.abs().sum().item()
    assert total > 0  # the comparison is not between two zero gradients


MODES = ["loop", "stream", "fused"]


@pytest.mark.parametrize("form", MODES)
@pytest.mark.parametrize("B,T,D,H,L,with_state", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_layer_matches_torch_float32(kind, B, T, D, H, L, with_state, form):
    compare_layers(kind, B, T, D, H, L, with_state, torch.float32, form)


@pytest.mark.parametrize("form", MODES)
@pytest.mark.parametrize("B,T,D,H,L,with_state", [(2, 6, 3, 5, 2, True), (1, 4, 5, 3, 3, False)])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_matches_torch_float64(kind, B, T, D, H, L, with_state, form):
    compare_layers(kind, B, T, D, H, L, with_state, torch.float64, form)


@pytest.mark.parametrize("kind", KINDS)
def test_a_seeded_stack_starts_from_pytorchs_weights(kind):
    """Drawn layer by layer in nn.RNN's order, a stack's initial weights equal PyTorch's under the same seed."""
    ours_cls, theirs_fn, *_ = KINDS[kind]
    torch.manual_seed(7)
    theirs = theirs_fn(3, 5, 2)
    torch.manual_seed(7)
    fresh = ours_cls(3, 5, 2, **({"nonlinearity": theirs.nonlinearity} if ours_cls is RNN else {}))
    for name, p in fresh.named_parameters():
        assert torch.equal(p, getattr(theirs, torch_name(kind, name))), name


@pytest.mark.parametrize("B,D,H,with_state", [(1, 3, 5, False), (4, 6, 2, True), (2, 4, 4, True)])
@pytest.mark.parametrize("kind", KINDS)
def test_cell_matches_torch(kind, B, D, H, with_state):
    torch.manual_seed(1)
    _, _, ours_cls, theirs_fn, names = KINDS[kind]
    theirs = theirs_fn(D, H)
    ours = ours_cls.from_torch(theirs)
    x = torch.randn(B, D)
    x_o, x_t = x.clone().requires_grad_(), x.clone().requires_grad_()
    state = make_state(kind, (B, H), torch.float32) if with_state else None
    args_o, args_t = (x_o,), (x_t,)
    if state is not None:
        args_o += (state,)
        args_t += (tuple(s.detach().clone() for s in state) if kind == "lstm" else state.detach().clone(),)
    new_o, new_t = as_tuple(ours(*args_o)), as_tuple(theirs(*args_t))
    w = [torch.randn(B, H) for _ in new_o]
    sum((a * b).sum() for a, b in zip(new_o, w)).backward()
    sum((a * b).sum() for a, b in zip(new_t, w)).backward()
    for a, b in zip(new_o, new_t):
        torch.testing.assert_close(a, b, **TOL[torch.float32])
    torch.testing.assert_close(x_o.grad, x_t.grad, **TOL[torch.float32])
    for ours_name, torch_base in names.items():
        torch.testing.assert_close(getattr(ours, ours_name).grad, getattr(theirs, torch_base).grad,
                                   **TOL[torch.float32])


@pytest.mark.parametrize("kind", KINDS)
def test_cell_is_one_step_of_the_layer(kind):
    """A one-layer stack run for T = 1 gives what its cell gives for x_1."""
    torch.manual_seed(2)
    ours_cls, theirs_fn, cell_cls, cell_fn, _ = KINDS[kind]
    layer = ours_cls.from_torch(theirs_fn(3, 5, 1))
    cell = cell_cls.from_torch(cell_fn(3, 5))
    for p, q in zip(cell.parameters(), layer.cells[0].parameters()):  # a separate cell with the layer's weights
        p.data.copy_(q.data)
    x = torch.randn(2, 1, 3)
    state = make_state(kind, (1, 2, 5), torch.float32)
    with torch.no_grad():
        out, final = layer(x, state)
        new = as_tuple(cell(x[:, 0], tuple(s[0] for s in state) if kind == "lstm" else state[0]))
    torch.testing.assert_close(out[:, 0], new[0])
    for a, b in zip(as_tuple(final), new):
        torch.testing.assert_close(a[0], b)


@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_layer_step_equals_forward(kind, L):
    """``step`` over t = 1..T (time outer, layers inner) equals ``forward`` (layers outer, time inner)."""
    torch.manual_seed(3)
    ours_cls, theirs_fn, *_ = KINDS[kind]
    layer = ours_cls.from_torch(theirs_fn(4, 6, L))
    x = torch.randn(3, 5, 4)
    state0 = make_state(kind, (L, 3, 6), torch.float32)
    with torch.no_grad():
        out, final = layer(x, state0)
        state, ys = state0, []
        for t in range(x.shape[1]):
            y, state = layer.step(x[:, t], state)
            ys.append(y)
    torch.testing.assert_close(torch.stack(ys, dim=1), out)
    for a, b in zip(as_tuple(state), as_tuple(final)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_from_torch_keeps_float64(kind):
    ours_cls, theirs_fn, *_ = KINDS[kind]
    ours = ours_cls.from_torch(theirs_fn(3, 4, 2).double())
    out, _ = ours(torch.randn(2, 3, 3, dtype=torch.float64))
    assert out.dtype == torch.float64


def test_default_init_matches_torch_range():
    """Like PyTorch, every weight starts uniform in [-1/sqrt(H), 1/sqrt(H)]."""
    torch.manual_seed(4)
    bound = 1 / 64**0.5
    for module in (RNN(5, 64, 2), LSTM(5, 64, 2), GRU(5, 64, 2)):
        for name, p in module.named_parameters():
            assert p.abs().max() <= bound, name
            assert p.abs().max() > 0.8 * bound, name  # spread over the range, not zeros


# ---------------------------------------------------------------- gate-bias options
def zero_params(cell):
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()


def test_forget_bias_sets_the_forget_gate_bias():
    H = 4
    lstm = LSTM(3, H, num_layers=2, forget_bias=3.0)
    for cell in lstm.cells:
        torch.testing.assert_close(cell.b_x[H:2 * H] + cell.b_h[H:2 * H], torch.full((H,), 3.0))
        others = torch.cat([cell.b_x[:H], cell.b_x[2 * H:], cell.b_h[:H], cell.b_h[2 * H:]])
        assert others.abs().max() <= 0.5 and others.std() > 0  # the other gates keep PyTorch's init
    default = LSTM(3, H)
    assert (default.cells[0].b_x[H:2 * H] + default.cells[0].b_h[H:2 * H]).abs().max() <= 1.0
    lm = RecurrentLM(10, 4, H, cell="lstm", n_layers=2, forget_bias=3.0)
    assert torch.all(lm.recurrent.cells[1].b_x[H:2 * H] == 3.0)


@pytest.mark.parametrize("bias,keeps", [(20.0, True), (-20.0, False)])
def test_forget_bias_is_the_gate_that_keeps_c(bias, keeps):
    """With every other parameter 0, f_t = sigma(bias): a large bias keeps c_{t-1}, a very negative one drops it."""
    cell = LSTMCell(3, 4, forget_bias=bias)
    b_f = cell.b_x[4:8].detach().clone()
    zero_params(cell)
    with torch.no_grad():
        cell.b_x[4:8] = b_f
        c_prev = torch.randn(2, 4)
        _, c = cell(torch.randn(2, 3), (torch.randn(2, 4), c_prev))
    torch.testing.assert_close(c, c_prev if keeps else torch.zeros(2, 4), atol=1e-6, rtol=0)


def test_update_bias_sets_the_update_gate_bias():
    H = 5
    gru = GRU(3, H, num_layers=2, update_bias=2.5)
    for cell in gru.cells:
        torch.testing.assert_close(cell.b_x[H:2 * H] + cell.b_h[H:2 * H], torch.full((H,), 2.5))
        others = torch.cat([cell.b_x[:H], cell.b_x[2 * H:], cell.b_h[:H], cell.b_h[2 * H:]])
        assert others.abs().max() <= 0.5 and others.std() > 0
    lm = RecurrentLM(10, 4, H, cell="gru", update_bias=2.5)
    assert torch.all(lm.recurrent.cells[0].b_x[H:2 * H] == 2.5)


@pytest.mark.parametrize("bias,keeps", [(20.0, True), (-20.0, False)])
def test_update_bias_is_the_gate_that_keeps_h(bias, keeps):
    """With every other parameter 0, z_t = sigma(bias) and n_t = 0: h_t is h_{t-1} or 0."""
    cell = GRUCell(3, 4, update_bias=bias)
    b_z = cell.b_x[4:8].detach().clone()
    zero_params(cell)
    with torch.no_grad():
        cell.b_x[4:8] = b_z
        h_prev = torch.randn(2, 4)
        h = cell(torch.randn(2, 3), h_prev)
    torch.testing.assert_close(h, h_prev if keeps else torch.zeros(2, 4), atol=1e-6, rtol=0)


# ---------------------------------------------------------------- the language model
LM_CELLS = [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {"forget_bias": 1.0}), ("gru", {})]


def make_lm(cell, kwargs, n_layers=2, V=11):
    torch.manual_seed(5)
    return RecurrentLM(V, 6, 8, cell=cell, n_layers=n_layers, **kwargs)


@pytest.mark.parametrize("cell,kwargs", LM_CELLS)
def test_lm_shapes_and_step_equals_forward(cell, kwargs):
    lm = make_lm(cell, kwargs)
    x = torch.randint(0, 11, (3, 7))
    with torch.no_grad():
        logits, final = lm(x)
        assert logits.shape == (3, 7, 11)
        state = None
        for t in range(7):
            logits_t, state = lm.step(x[:, t], state)
            assert logits_t.shape == (3, 11)
            torch.testing.assert_close(logits_t, logits[:, t])
        # forward on the two halves, carrying the state, equals forward on the whole
        first, mid = lm(x[:, :3])
        second, _ = lm(x[:, 3:], mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), logits)
    for a, b in zip(as_tuple(state), as_tuple(final)):
        assert a.shape == (2, 3, 8)
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("cell,kwargs", [("rnn", {}), ("rnn", {"nonlinearity": "relu"}), ("lstm", {"forget_bias": 2.0}),
                                         ("gru", {"update_bias": 1.5})])
def test_fused_and_step_modes_equal_the_loop_model(cell, kwargs):
    """One model, three forms of its recurrence: logits, final states and every gradient agree.

    The gradients reach every parameter (embedding, each layer's four weights, head), the
    initial state and, through the final state, the recurrence itself.
    """
    torch.manual_seed(0)
    lm = RecurrentLM(11, 5, 7, cell=cell, n_layers=2, form="fused", **kwargs).double()
    if kwargs:  # the gate bias reached every layer of the fused model too
        value = next(iter(kwargs.values()))
        if cell != "rnn":
            assert all(torch.all(c.b_x[7:14] == value) and torch.all(c.b_h[7:14] == 0) for c in lm.recurrent.cells)
    x = torch.randint(0, 11, (3, 9), generator=torch.Generator().manual_seed(1))
    s0 = torch.randn(2, 3, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    w = torch.Generator().manual_seed(3)
    probe = [torch.randn(3, 9, 11, dtype=torch.float64, generator=w)]
    probe += [torch.randn(2, 3, 7, dtype=torch.float64, generator=w) for _ in range(2 if cell == "lstm" else 1)]

    def run(form):
        lm.zero_grad()
        state = tuple(s0.clone().requires_grad_() for _ in range(2)) if cell == "lstm" else s0.clone().requires_grad_()
        logits, final = lm(x, state, form=form)
        outs = [logits, *as_tuple(final)]
        sum((o * p).sum() for o, p in zip(outs, probe)).backward()
        grads = {n: p.grad.clone() for n, p in lm.named_parameters()}
        return outs, grads, [s.grad for s in as_tuple(state)]

    ref_outs, ref_grads, ref_state_grads = run("loop")
    assert len(ref_grads) == 1 + 4 * 2 + 2 and all(g.abs().sum() > 0 for g in ref_grads.values())
    for form in ("fused", "stream"):
        outs, grads, state_grads = run(form)
        for a, b in zip(outs, ref_outs):
            torch.testing.assert_close(a, b, **TOL[torch.float64])
        for n in ref_grads:
            torch.testing.assert_close(grads[n], ref_grads[n], **TOL[torch.float64], msg=lambda m: f"{form} {n}: {m}")
        for a, b in zip(state_grads, ref_state_grads):
            torch.testing.assert_close(a, b, **TOL[torch.float64])
    lm.form = "fused"
    la, _ = lm.step(x[:, 0])
    torch.testing.assert_close(la, lm(x[:, :1])[0][:, 0], **TOL[torch.float64])
    assert repr(lm).startswith("RecurrentLM(\n  cell=" + repr(cell) + ", form='fused'")


def test_a_seeded_fused_model_starts_like_pytorchs():
    """RecurrentLM's weights under a seed are those of embedding + nn.LSTM + linear built in that order."""
    torch.manual_seed(5)
    lm = RecurrentLM(11, 5, 7, cell="lstm", n_layers=2, form="fused", forget_bias=3.0)
    torch.manual_seed(5)
    embed, lstm, head = nn.Embedding(11, 5), nn.LSTM(5, 7, 2, batch_first=True), nn.Linear(7, 11)
    assert torch.equal(lm.embed.weight, embed.weight) and torch.equal(lm.head.weight, head.weight)
    for k, c in enumerate(lm.recurrent.cells):
        assert torch.equal(c.W_x, getattr(lstm, f"weight_ih_l{k}")) and torch.equal(c.W_h, getattr(lstm, f"weight_hh_l{k}"))
        bias = getattr(lstm, f"bias_ih_l{k}").detach().clone()
        bias[7:14] = 3.0
        assert torch.equal(c.b_x, bias)


def generate_by_rerunning(lm, prompt, length, temperature, generator):
    """The quadratic way: re-run the whole prefix through ``forward`` for every new token."""
    ids = prompt.clone()
    with torch.no_grad():
        for _ in range(length):
            logits = lm(ids[None])[0][0, -1]  # (V,)
            if temperature == 0:
                nxt = logits.argmax()
            else:
                nxt = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=generator)[0]
            ids = torch.cat([ids, nxt.view(1)])
    return ids


@pytest.mark.parametrize("temperature", [0.0, 1.0, 0.7])
@pytest.mark.parametrize("cell,kwargs", LM_CELLS)
def test_generate_streaming_equals_rerunning(cell, kwargs, temperature):
    lm = make_lm(cell, kwargs)
    prompt = torch.tensor([3, 1, 4, 1, 5])
    streamed = lm.generate(prompt, 12, temperature=temperature, generator=torch.Generator().manual_seed(7))
    rerun = generate_by_rerunning(lm, prompt, 12, temperature, torch.Generator().manual_seed(7))
    assert streamed.shape == (17,) and streamed.dtype == torch.long
    assert torch.equal(streamed, rerun)
    if temperature > 0:  # the generator is used: another seed gives other tokens
        other = lm.generate(prompt, 12, temperature=temperature, generator=torch.Generator().manual_seed(8))
        assert not torch.equal(other, streamed)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_generate_does_constant_work_per_token(cell, monkeypatch):
    """The prompt goes through ``forward`` once; then one cell call per layer per new token."""
    lm = make_lm(cell, {}, n_layers=2)
    calls = {"layer": 0, "cell": 0}
    lm.recurrent.register_forward_hook(lambda *_: calls.__setitem__("layer", calls["layer"] + 1))
    name = f"{cell}_cell"
    equation = getattr(recurrent_ops, name)

    def counted(*args, **kwargs):
        calls["cell"] += 1
        return equation(*args, **kwargs)

    monkeypatch.setattr(recurrent_ops, name, counted)
    P, N = 5, 20
    lm.generate(torch.arange(P), N, generator=torch.Generator().manual_seed(0))
    assert calls["layer"] == 1
    assert calls["cell"] == 2 * (P + N - 1)


# ---------------------------------------------------------------- bad input
x8 = torch.randn(2, 5, 8)
h1 = torch.zeros(1, 2, 4)
lm10 = RecurrentLM(10, 4, 6)
ERRORS = [
    # layers: the input
    (lambda: RNN(8, 4)(torch.randn(2, 5)), ValueError, "x must be 3-dimensional, got shape (2, 5)"),
    (lambda: GRU(8, 4)(torch.randn(2, 5, 7)), ValueError, "x must have last dimension 8, got shape (2, 5, 7)"),
    (lambda: LSTM(8, 4)(torch.ones(2, 5, 8, dtype=torch.long)), TypeError, "x must be a floating-point tensor"),
    (lambda: RNN(8, 4)(x8.double()), TypeError, "x must have the parameters' dtype torch.float32, got dtype torch.float64"),
    (lambda: RNN(8, 4)(torch.randn(2, 0, 8)), ValueError, "x must have at least one time step"),
    (lambda: RNN(8, 4)(x8.tolist()), TypeError, "x must be a torch.Tensor, got list"),
    # layers: the state
    (lambda: RNN(8, 4)(x8, torch.zeros(2, 4)), ValueError, "h_0 must have shape (num_layers, B, hidden_size) = (1, 2, 4), got shape (2, 4)"),
    (lambda: GRU(8, 4, 2)(x8, h1), ValueError, "h_0 must have shape (num_layers, B, hidden_size) = (2, 2, 4), got shape (1, 2, 4)"),
    (lambda: RNN(8, 4)(x8, torch.zeros(1, 1, 4)), ValueError, "got shape (1, 1, 4)"),
    (lambda: RNN(8, 4)(x8, h1.double()), TypeError, "h_0 must have dtype torch.float32 like the input, got dtype torch.float64"),
    (lambda: LSTM(8, 4)(x8, h1), TypeError, "state must be a tuple (h, c) of two tensors, got Tensor"),
    (lambda: LSTM(8, 4)(x8, (h1,)), TypeError, "got tuple of length 1"),
    (lambda: LSTM(8, 4)(x8, (h1, torch.zeros(2, 4))), ValueError, "c_0 must have shape (num_layers, B, hidden_size) = (1, 2, 4)"),
    (lambda: RNN(8, 4).step(x8, h1), ValueError, "x_t must be 2-dimensional, got shape (2, 5, 8)"),
    (lambda: GRU(8, 4).step(x8[:, 0], torch.zeros(2, 4)), ValueError, "h must have shape (num_layers, B, hidden_size) = (1, 2, 4)"),
    # cells
    (lambda: RNNCell(8, 4)(x8), ValueError, "x_t must be 2-dimensional, got shape (2, 5, 8)"),
    (lambda: GRUCell(8, 4)(torch.randn(2, 3)), ValueError, "x_t must have last dimension 8, got shape (2, 3)"),
    (lambda: RNNCell(8, 4)(x8[:, 0], h1), ValueError, "h_prev must have shape (B, hidden_size) = (2, 4), got shape (1, 2, 4)"),
    (lambda: LSTMCell(8, 4)(x8[:, 0], torch.zeros(2, 4)), TypeError, "state must be a tuple (h, c)"),
    (lambda: LSTMCell(8, 4)(x8[:, 0], (torch.zeros(2, 4), torch.zeros(3, 4))), ValueError, "c_prev must have shape (B, hidden_size) = (2, 4), got shape (3, 4)"),
    # constructors and from_torch
    (lambda: RNN(8, 0), ValueError, "hidden_size must be >= 1, got 0"),
    (lambda: LSTM(8, 4, num_layers=2.0), TypeError, "num_layers must be an int, got float"),
    (lambda: RNN(8, 4, nonlinearity="sigmoid"), ValueError, "nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"),
    (lambda: LSTM(8, 4, forget_bias="3"), TypeError, "forget_bias must be a number or None, got str"),
    (lambda: GRUCell(8, 4, update_bias=True), TypeError, "update_bias must be a number or None, got bool"),
    (lambda: RNN.from_torch(nn.LSTM(8, 4)), TypeError, "RNN.from_torch expects a torch.nn.RNN, got LSTM"),
    (lambda: LSTM.from_torch(nn.LSTM(8, 4, bidirectional=True)), ValueError, "the module uses bidirectional"),
    (lambda: GRU.from_torch(nn.GRU(8, 4, num_layers=2, dropout=0.1)), ValueError, "the module uses dropout"),
    (lambda: LSTMCell.from_torch(nn.LSTMCell(8, 4, bias=False)), ValueError, "the module uses bias=False"),
    # the language model
    (lambda: RecurrentLM(10, 4, 6, cell="transformer"), ValueError, "cell must be one of 'rnn', 'lstm', 'gru', got 'transformer'"),
    (lambda: RecurrentLM(10, 4, 6, cell="rnn", forget_bias=3.0), TypeError, "cell='rnn' takes the option(s) ['nonlinearity'], got ['forget_bias']"),
    (lambda: RecurrentLM(10, 4, 6, cell="lstm", update_bias=3.0), TypeError, "cell='lstm' takes the option(s) ['forget_bias'], got ['update_bias']"),
    (lambda: RecurrentLM(10, 4, 6, form="torch"), ValueError, "form must be one of 'loop', 'stream', 'fused', got 'torch'"),
    (lambda: LSTM(8, 4, form="fast"), ValueError, "form must be one of 'loop', 'stream', 'fused', got 'fast'"),
    (lambda: GRU(8, 4)(x8, form="parallel"), ValueError, "form must be one of 'loop', 'stream', 'fused', got 'parallel'"),
    (lambda: RecurrentLM(10, 4, 6, n_layers=0), ValueError, "n_layers must be >= 1, got 0"),
    (lambda: lm10(torch.randn(2, 5)), TypeError, "x must be an integer tensor (token ids), got dtype torch.float32"),
    (lambda: lm10(torch.tensor([1, 2])), ValueError, "x must be 2-dimensional, got shape (2,)"),
    (lambda: lm10(torch.tensor([[0, 10]])), ValueError, "x must lie in [0, 10), got values in [0, 10]"),
    (lambda: lm10(torch.tensor([[0, 1]]), torch.zeros(1, 6)), ValueError, "h_0 must have shape (num_layers, B, hidden_size) = (1, 1, 6)"),
    (lambda: lm10.step(torch.tensor([[1]])), ValueError, "x_t must be 1-dimensional, got shape (1, 1)"),
    (lambda: lm10.generate(torch.tensor([[1, 2]]), 3), ValueError, "prompt_ids must be 1-dimensional, got shape (1, 2)"),
    (lambda: lm10.generate(torch.tensor([], dtype=torch.long), 3), ValueError, "prompt_ids must hold at least one token"),
    (lambda: lm10.generate(torch.tensor([1]), 0), ValueError, "length must be >= 1, got 0"),
    (lambda: lm10.generate(torch.tensor([1]), 3, temperature=-1.0), ValueError, "temperature must be a number >= 0"),
    (lambda: lm10.generate(torch.tensor([-1]), 3), ValueError, "prompt_ids must lie in [0, 10), got values in [-1, -1]"),
]


@pytest.mark.parametrize("call,error,message", ERRORS, ids=[m[:40] for _, _, m in ERRORS])
def test_bad_input_raises(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_recurrent_forms_reject_bad_arguments():
    R = recurrent_ops
    x = torch.randn(2, 3, 4)
    W = dict(W_x=(torch.randn(20, 4),), W_h=(torch.randn(20, 5),), b_x=(torch.randn(20),), b_h=(torch.randn(20),))
    y, (h, c) = R.lstm_loop(x, **W)
    assert y.shape == (2, 3, 5) and h.shape == c.shape == (1, 2, 5)
    for call, exc, match in [
        (lambda: R.lstm_loop(x, **{**W, "W_x": torch.randn(20, 4)}), TypeError, "W_x must be a non-empty tuple"),
        (lambda: R.gru_loop(x, **W), ValueError, r"W_x\[0\] of a gru layer must have shape \(15, 4\)"),
        (lambda: R.lstm_fused(x, **W, state=h), TypeError, r"a tuple \(h, c\)"),
        (lambda: R.lstm_step(x, **W), ValueError, "x_t must be 2-dimensional"),
        (lambda: R.lstm_loop(x.double(), **W), TypeError, "must have the input's dtype torch.float64"),
        (lambda: R.rnn_loop(x, **W, nonlinearity="relu"), ValueError, r"W_x\[0\] of a rnn layer"),
        (lambda: R.lstm_loop(x, **W, nonlinearity="relu"), TypeError, "lstm forms take no option"),
        (lambda: R.lstm_loop(x, **W, state=(h, c[:, :1])), ValueError, r"c must have shape \(L, B, H\) = \(1, 2, 5\)"),
    ]:
        with pytest.raises(exc, match=match):
            call()


@pytest.mark.parametrize("family", ["rnn", "lstm", "gru"])
def test_ops_stack_refuses_weights_of_the_wrong_rank_with_a_value_error(family):
    """A layer's W_h must be (G·H, H): a 1-D or 3-D W_h is named, with the shape it should have, not an IndexError."""
    G, H, D, L = {"rnn": 1, "lstm": 4, "gru": 3}[family], 4, 3, 1
    x = torch.randn(2, 5, D)
    good = dict(W_x=(torch.randn(G * H, D),), W_h=(torch.randn(G * H, H),), b_x=(torch.zeros(G * H),),
                b_h=(torch.zeros(G * H),))
    recurrent_ops.FORMS[family]["loop"](x, **good)                      # the right shapes run
    for bad in (torch.randn(G * H), torch.randn(1, G * H, H)):
        with pytest.raises(ValueError, match=r"W_h\[0\] of a .* layer must have (2 dimensions|shape)"):
            recurrent_ops.FORMS[family]["loop"](x, **dict(good, W_h=(bad,)))


def test_a_two_symbol_alphabet_is_the_smallest_a_recurrent_lm_takes():
    """Two symbols are the smallest vocabulary a next-token model can choose from; one is refused, with the name."""
    torch.manual_seed(0)
    lm = RecurrentLM(2, 3, 4, cell="gru")
    logits, _ = lm(torch.tensor([[0, 1, 1, 0]]))
    assert logits.shape == (1, 4, 2)
    with pytest.raises(ValueError, match="vocab_size"):
        RecurrentLM(1, 3, 4)
