import matplotlib.pyplot as plt
import numpy as np
import pytest

from seqlab import plot
from seqlab.train import History


def test_style_and_lines():
    plot.use_style()
    ax = plot.lines({"a": ([1, 2, 3], [3, 2, 1]), "b": ([1, 2, 3], [1, 2, 3])}, xlabel="step", ylabel="loss (nats)", logy=True)
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss (nats)"
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    assert ax.figure.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # opaque: readable in dark form
    plt.close("all")


def test_lines_keep_the_colour_asked_for_and_refuse_an_unknown_name():
    from matplotlib.colors import to_hex
    ax = plot.lines({"a": ([1, 2], [1, 2]), "b": ([1, 2], [2, 1])}, xlabel="x", ylabel="y", colors={"b": "#123456"})
    assert to_hex(ax.get_lines()[1].get_color()) == "#123456"
    assert to_hex(ax.get_lines()[0].get_color()) != "#123456"          # the others keep the cycle's colour
    with pytest.raises(ValueError, match=r"not plotted: \['c'\]"):
        plot.lines({"a": ([1], [1])}, xlabel="x", ylabel="y", colors={"c": "red"})
    plt.close("all")


def test_learning_curves_and_heatmap():
    h = History(loss=[3.0, 2.0, 1.0], eval_step=[3], eval={"acc": [0.5]})
    ax = plot.learning_curves({"run": h}, window=2)
    assert list(ax.get_lines()[0].get_ydata()) == [3.0, 2.5, 1.5]
    ax = plot.heatmap(np.eye(3), xlabel="key", ylabel="query", xticklabels="abc", colorbar="weight")
    assert ax.get_xlabel() == "key"
    plt.close("all")


def test_plot_errors():
    with pytest.raises(ValueError, match="labels both axes"):
        plot.lines({"a": ([1], [1])}, xlabel="", ylabel="y")
    with pytest.raises(ValueError, match="x has 2 points but y has 1"):
        plot.lines({"a": ([1, 2], [1])}, xlabel="x", ylabel="y")
    with pytest.raises(ValueError, match="2-D matrix"):
        plot.heatmap(np.zeros(3), xlabel="x", ylabel="y")
    plt.close("all")


def test_explorer_builds_a_widget_that_calls_the_plot():
    from seqlab.widgets import explorer

    seen = []
    w = explorer(lambda rho: seen.append(rho), rho=(0.5, 1.5, 0.5))
    assert seen == [1.0]  # the first state is drawn at once
    w.children[0].value = 1.5
    assert seen[-1] == 1.5
    with pytest.raises(ValueError, match="at least one control"):
        explorer(lambda: None)


def test_power_laws_draws_points_and_fitted_slopes():
    xs = [8, 16, 32, 64]
    ax = plot.power_laws({"linear": (xs, [2 * x for x in xs]), "square": (xs, [x * x for x in xs])},
                         xlabel="n", ylabel="time (s)", fit_last=3)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["linear (slope 1.00)", "square (slope 2.00)"]
    assert len(ax.get_lines()) == 4                                        # points and a fitted line per series
    fitted = ax.get_lines()[2]                     # the square's fit: the last 3 points and a factor 1.4 past either end
    assert fitted.get_xdata()[0] == pytest.approx(16 / 1.4) and fitted.get_xdata()[-1] == pytest.approx(64 * 1.4)
    assert fitted.get_ydata() == pytest.approx(fitted.get_xdata() ** 2) and fitted.get_zorder() > ax.get_lines()[3].get_zorder()
    ax = plot.power_laws({"a": (xs, xs)}, xlabel="n", ylabel="y", fit_last=None)
    assert len(ax.get_lines()) == 1
    with pytest.raises(ValueError, match="fit_last"):
        plot.power_laws({"a": (xs, xs)}, xlabel="n", ylabel="y", fit_last=1)
    plt.close("all")


# --- the figure check -----------------------------------------------------------


def _good():
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 2, 1])
    ax.set(title="loss", xlabel="step", ylabel="loss (nats)")
    return fig, ax


def test_a_finished_figure_passes():
    fig, ax = _good()
    assert plot.check_figure(fig) == []
    fig, ax = plt.subplots()
    ax.imshow(np.eye(4))
    fig.colorbar(ax.images[0], ax=ax, label="weight")
    ax.set(title="attention", xlabel="key j", ylabel="query i")
    assert plot.check_figure(fig) == []                       # the colour bar's own axes is not a panel
    plt.close("all")


@pytest.mark.parametrize("breakage, words", [
    (lambda ax: ax.set_title(""), "no title"),
    (lambda ax: ax.set_xlabel(""), "x axis has no label"),
    (lambda ax: ax.set_ylabel(""), "y axis has no label"),
    (lambda ax: ax.imshow(np.eye(3)), "without a colour bar"),
    (lambda ax: (ax.set_xscale("log"), ax.set_xlim(1, 1000), ax.set_xticks([10, 11, 12], ["3×10¹", "3×10¹", "3×10¹"])), "tick labels overlap"),
])
def test_the_check_names_what_a_figure_lacks(breakage, words):
    fig, ax = _good()
    breakage(ax)
    problems = plot.check_figure(fig)
    assert any(words in p for p in problems), problems
    plt.close("all")


def test_shared_axes_suptitle_and_diagrams_are_understood():
    fig, axes = plt.subplots(1, 2, sharey=True)
    for ax in axes:
        ax.plot([0, 1], [0, 1])
        ax.set_xlabel("step")
    axes[0].set_ylabel("loss (nats)")                          # the right panel shares it
    fig.suptitle("two runs")                                   # one title for both panels
    assert plot.check_figure(fig) == []
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "h_t")
    ax.set_axis_off()
    ax.set_title("the unrolled RNN")                           # a diagram needs a title, not axis labels
    assert plot.check_figure(fig) == []
    fig, ax = plt.subplots()
    ax.set_axis_off()                                          # an empty, hidden panel is not checked
    assert plot.check_figure(fig) == []
    with pytest.raises(TypeError, match="Figure"):
        plot.check_figure(ax)
    plt.close("all")


def test_use_style_check_fails_the_cell_that_draws_an_unfinished_figure():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_cell("import matplotlib.pyplot as plt; plt.close('all')\nfrom seqlab import plot\nplot.use_style(check=True)")
        ok = shell.run_cell("fig, ax = plt.subplots(); ax.plot([1, 2]); ax.set(title='t', xlabel='x', ylabel='y'); plt.close(fig)\n41 + 1")
        assert ok.success and ok.result == 42                  # the last expression is still the cell's value
        bad = shell.run_cell("fig, ax = plt.subplots(); ax.plot([1, 2]); ax.set(xlabel='x', ylabel='y')")
        assert not bad.success and isinstance(bad.error_in_exec, plot.FigureError)
        assert "no title" in str(bad.error_in_exec)
        shell.run_cell("plt.close('all'); plot.use_style()")  # check off again
        assert shell.run_cell("fig, ax = plt.subplots(); ax.plot([1, 2])").success
    finally:
        shell.run_cell("plt.close('all')")
        InteractiveShell.clear_instance()
    with pytest.raises(TypeError, match="bool"):
        plot.use_style(check="yes")


def test_a_shared_colour_bar_covers_heatmaps_on_its_scale_only():
    fig, axes = plt.subplots(1, 3)
    for i, ax in enumerate(axes):
        ax.imshow(np.eye(3) * (i + 1), vmin=0, vmax=3 if i < 2 else 9)
        ax.set(title=f"head {i}", xlabel="key", ylabel="query")
    fig.colorbar(axes[0].images[0], ax=axes[:2].tolist(), label="weight")
    problems = plot.check_figure(fig)
    assert len(problems) == 1 and "panel 3" in problems[0] and "colour bar" in problems[0]   # the third has its own scale
    plt.close("all")


def test_check_figure_reports_a_character_the_font_cannot_draw():
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    ax.set(xlabel="distance (steps)", ylabel="‖∂𝓛/∂h_t‖", title="a glyph DejaVu Sans lacks")
    problems = plot.check_figure(fig)
    assert any("cannot draw" in p and "mathtext" in p for p in problems), problems
    ax.set_ylabel(r"$\|\partial\mathcal{L}/\partial h_t\|$")
    assert plot.check_figure(fig) == []
    plt.close(fig)


def test_describe_figure_says_what_each_panel_draws():
    plot.use_style()
    fig, (a, b) = plt.subplots(1, 2)
    a.plot([1, 2], [3, 4], label="Pre-Norm")
    a.scatter([1, 2], [3, 5], label="Post-Norm")
    a.legend()
    a.set(xlabel="training step", ylabel=r"$\|\partial \mathcal{L} / \partial W_1\|$", title="12 layers")
    im = b.imshow(np.eye(3))
    fig.colorbar(im, ax=b, label="attention weight")
    b.set(xlabel="key", ylabel="query", title="weights")
    fig.suptitle("two views")
    text = plot.describe_figure(fig)
    plt.close(fig)
    assert text.startswith("two views. A figure of 2 panels.")
    assert "Panel 1, '12 layers': lines and points, ‖∂ L / ∂ W 1‖ against training step; legend: Pre-Norm; Post-Norm." in text
    assert "Panel 2, 'weights': a heatmap of attention weight, query against key." in text
    with pytest.raises(TypeError, match="Figure"):
        plot.describe_figure(a)


def test_the_inline_png_carries_the_description():
    import base64
    import io

    from PIL import Image

    plot.use_style()
    fig, ax = plt.subplots()
    ax.bar([1, 2], [3, 4])
    ax.set(xlabel="arm", ylabel="loss (nats)", title="bars")
    png = base64.b64decode(plot._png_with_description(fig))
    plt.close(fig)
    with Image.open(io.BytesIO(png)) as im:
        assert im.text["Description"] == "A figure of one panel. The panel, 'bars': bars, loss (nats) against arm."


def test_describe_figure_reads_a_shared_axis_label_from_the_panel_that_has_it():
    plot.use_style()
    fig, (a, b) = plt.subplots(2, 1, sharex=True)
    a.plot([1, 2], [3, 4]); a.set(ylabel="loss (nats)", title="top")
    b.plot([1, 2], [1, 2]); b.set(xlabel="training step", ylabel="accuracy", title="bottom")
    text = plot.describe_figure(fig)
    plt.close(fig)
    assert "Panel 1, 'top': lines, loss (nats) against training step." in text
