"""``runlog.choose_rate``: the one rule every sweep uses to pick its learning rate (chapters 11 to 15)."""
import math

import pytest

from seqlab.experiments import hybrid_lr, induction, longrange, parallel_rnn, recall, ssm
from seqlab.experiments.runlog import brackets, choose_rate


def runs_of(scores, key="loss"):
    """``{(group, lr): [score per seed]}`` -> runs with ``group``, ``lr``, ``seed`` and the score."""
    return [{"group": g, "lr": lr, "seed": s, key: v} for (g, lr), vs in scores.items() for s, v in enumerate(vs)]


def test_the_lowest_mean_over_seeds_wins_not_the_best_single_seed():
    runs = runs_of({("A", 1e-3): [2.0, 2.0, 2.0], ("A", 1e-2): [1.0, 3.0, 2.6], ("A", 1e-1): [2.5, 2.5, 2.5]})
    c = choose_rate(runs, lambda r: r["group"], lambda r: r["loss"], lrs=[1e-3, 1e-2, 1e-1])["A"]
    assert c["lr"] == 1e-3 and not c["bracketed"]              # 1e-2 has the best seed but a mean of 2.2
    assert c["mean"] == [[1e-3, 2.0], [1e-2, pytest.approx(2.2)], [1e-1, 2.5]]
    assert [r["seed"] for r in c["runs"]] == [0, 1, 2] and {r["lr"] for r in c["runs"]} == {1e-3}


def test_higher_is_better_for_an_accuracy_and_an_inner_best_is_bracketed():
    runs = runs_of({("A", 1e-3): [0.5], ("A", 1e-2): [0.9], ("A", 1e-1): [0.7]}, key="acc")
    c = choose_rate(runs, lambda r: r["group"], lambda r: r["acc"], lower=False)["A"]
    assert c["lr"] == 1e-2 and c["bracketed"]
    assert choose_rate(runs, lambda r: r["group"], lambda r: r["acc"])["A"]["lr"] == 1e-3  # as a loss: the lowest


def test_a_tie_goes_to_the_second_score_then_to_the_rate_listed_first():
    runs = [{"g": 0, "lr": lr, "seed": 0, "acc": 1.0, "steps": st} for lr, st in ((1e-3, 300), (1e-2, 100), (1e-1, 100))]
    assert choose_rate(runs, lambda r: r["g"], lambda r: r["acc"], lower=False, tie=lambda r: r["steps"])[0]["lr"] == 1e-2
    assert choose_rate(runs, lambda r: r["g"], lambda r: r["acc"], lower=False)[0]["lr"] == 1e-3
    assert choose_rate(runs, lambda r: r["g"], lambda r: r["acc"], lower=False, lrs=[1e-1, 1e-2, 1e-3])[0]["lr"] == 1e-1


def test_a_diverged_rate_is_the_worst_whichever_way_is_better():
    runs = runs_of({("A", 1e-3): [2.0], ("A", 1e-2): [math.nan], ("A", 1e-1): [3.0]})
    for lower, want in ((True, 1e-3), (False, 1e-1)):
        assert choose_rate(runs, lambda r: r["group"], lambda r: r["loss"], lower=lower)["A"]["lr"] == want


def test_a_tuning_seed_chooses_alone_and_every_seed_at_its_choice_is_returned():
    runs = runs_of({("A", 1e-3): [1.0, 5.0, 5.0], ("A", 1e-2): [2.0, 0.0, 0.0]})
    assert choose_rate(runs, lambda r: r["group"], lambda r: r["loss"])["A"]["lr"] == 1e-2
    c = choose_rate(runs, lambda r: r["group"], lambda r: r["loss"], tune_seed=0)["A"]
    assert c["lr"] == 1e-3 and [r["seed"] for r in c["runs"]] == [0, 1, 2]
    with pytest.raises(ValueError, match="tune_seed=7"):
        choose_rate(runs, lambda r: r["group"], lambda r: r["loss"], tune_seed=7)


def test_groups_keep_their_order_and_a_rate_without_runs_is_left_out():
    runs = runs_of({("B", 1e-2): [1.0], ("A", 1e-3): [1.0], ("A", 1e-2): [0.5]})
    out = choose_rate(runs, lambda r: r["group"], lambda r: r["loss"], lrs=[1e-3, 1e-2, 1e-1])
    assert list(out) == ["B", "A"] and out["B"]["mean"] == [[1e-2, 1.0]] and out["A"]["lr"] == 1e-2


def test_every_sweeps_chooser_agrees_with_choose_rate_on_one_set_of_runs():
    """The five choosers are views of one rule: on the same scores they pick the same rates."""
    lrs = [1e-3, 1e-2, 1e-1]
    score = {(g, lr): [1.0 + abs(math.log10(lr) + 2 + 1.2 * g) + 0.1 * s for s in range(3)] for g in (0, 1) for lr in lrs}
    want = {g: c["lr"] for g, c in choose_rate(runs_of(score), lambda r: r["group"], lambda r: r["loss"]).items()}
    base = runs_of(score)
    got_pr = parallel_rnn.best_rates([dict(r, arch=r["group"], val_loss=r["loss"], test_loss=0.0) for r in base], lrs)
    got_in = induction.best_attention_rates([dict(r, size=r["group"], select_loss=r["loss"]) for r in base], lrs)
    got_ssm = ssm.best_rates([dict(r, task="t", layer=r["group"], accuracy=-r["loss"], steps=1) for r in base], lrs)
    got_rc = {r["width"]: r["lr"] for r in recall.best_lr([dict(r, arch="a", width=r["group"], n_pairs=1,
                                                                val_accuracy=-r["loss"], accuracy=0.0) for r in base])}
    got_lr = {row["arch"]: row["lr"] for row in longrange.lag_table([dict(r, arch=r["group"], lag=4, val_accuracy=-r["loss"],
                                                                          accuracy=0.0, baseline=0.1) for r in base])}
    curve = lambda r: {"step": [100, 200], "accuracy": [1.0 if r["loss"] < 1.5 else 0.0] * 2}
    got_hy = hybrid_lr.best_rates([dict(r, model=r["group"], curve=curve(r), accuracy=0.0) for r in base], lrs, 400, 0.9)
    for g in (0, 1):
        assert got_pr[g]["lr"] == got_in[g]["lr"] == got_ssm["t", g]["lr"] == got_rc[g] == got_lr[g] == want[g]
    assert want == {0: 1e-2, 1: 1e-3}
    assert {g: got_hy[g]["lr"] for g in (0, 1)} == want  # the only rate whose seeds all reach the target


def test_brackets_asks_three_rates_and_no_edge_optimum_an_inner_rate_cannot_match():
    score = lambda scores: choose_rate(runs_of({("A", lr): [v] for lr, v in scores.items()}, key="acc"),
                                       lambda r: r["group"], lambda r: r["acc"], lower=False)["A"]
    assert brackets(score({1e-3: 0.5, 1e-2: 0.9, 1e-1: 0.7}))                 # inside
    assert not brackets(score({1e-3: 0.5, 1e-2: 0.6, 1e-1: 0.9}))             # at the top edge, far above the rest
    assert brackets(score({1e-3: 0.5, 1e-2: 0.89, 1e-1: 0.9}))                # at the edge, but flat within 0.02
    assert not brackets(score({1e-2: 0.5, 1e-1: 0.6}, ))                      # two rates cannot bracket
