"""Chapter 13's recorded copying study: how each layer's learning rate is chosen, and the committed file."""
import json

import pytest

from seqlab import experiments
from seqlab.experiments import ssm as ssm_exp


def run(layer, lr, seed, accuracy, steps=400, task="selective copying"):
    return {"task": task, "layer": layer, "lr": lr, "seed": seed, "accuracy": accuracy, "steps": steps}


def test_best_rates_picks_the_highest_mean_validation_accuracy_and_says_whether_it_is_inside_the_grid():
    lrs = [1e-3, 1e-2, 1e-1]
    runs = [run("A", 1e-3, 0, 0.5), run("A", 1e-3, 1, 0.7),     # mean 0.6
            run("A", 1e-2, 0, 0.9), run("A", 1e-2, 1, 0.5),     # mean 0.7: A's best, inside the grid
            run("A", 1e-1, 0, 0.2), run("A", 1e-1, 1, 0.2),
            run("B", 1e-3, 0, 0.1), run("B", 1e-2, 0, 0.2), run("B", 1e-1, 0, 0.3)]  # B's best at the edge
    best = ssm_exp.best_rates(runs, lrs)
    assert best["selective copying", "A"]["lr"] == 1e-2 and best["selective copying", "A"]["bracketed"]
    assert best["selective copying", "A"]["mean_accuracy"] == [[1e-3, pytest.approx(0.6)], [1e-2, pytest.approx(0.7)],
                                                               [1e-1, pytest.approx(0.2)]]
    assert best["selective copying", "B"]["lr"] == 1e-1 and not best["selective copying", "B"]["bracketed"]


def test_best_rates_breaks_a_tie_in_accuracy_by_the_fewer_steps_run():
    runs = [run("A", 1e-3, 0, 1.0, steps=300), run("A", 1e-2, 0, 1.0, steps=100), run("A", 1e-1, 0, 1.0, steps=200)]
    assert ssm_exp.best_rates(runs, [1e-3, 1e-2, 1e-1])["selective copying", "A"]["lr"] == 1e-2


def test_the_committed_study_chose_the_rates_its_runs_give_and_ran_the_longer_budget_at_them():
    path = experiments.results_dir() / "copying.json"
    record = json.loads(path.read_text())
    results, s = record["results"], record["results"]["settings"]
    assert s == ssm_exp.SETTINGS[record["scale"]]
    grid = [r for r in results["runs"] if r["budget"] == s["steps"]]
    assert len(grid) == 2 * len(ssm_exp.MIXERS) * len(s["lrs"]) * len(record["seeds"])   # every task, layer, rate, seed
    best = ssm_exp.best_rates(grid, s["lrs"])
    assert results["best"] == [[t, n, b["lr"], b["bracketed"]] for (t, n), b in best.items()]
    longer = [r for r in results["runs"] if r["budget"] == s["longer_factor"] * s["steps"]]
    assert sorted((r["layer"], r["seed"]) for r in longer) == sorted((n, sd) for n in ssm_exp.MIXERS for sd in record["seeds"])
    assert all(r["task"] == "selective copying" and r["lr"] == best["selective copying", r["layer"]]["lr"] for r in longer)
