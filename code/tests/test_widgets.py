"""The explorers (seqlab.widgets): the first view is drawn in the kernel, and a notebook
front end such as nbclient (the book build) never has to send anything back while the
cell runs -- the cause of the chapter 9 hang (see seqlab/widgets.py)."""
from __future__ import annotations

import base64

import matplotlib.pyplot as plt
import pytest

ipywidgets = pytest.importorskip("ipywidgets")

from seqlab.widgets import explorer  # noqa: E402


def test_explorer_calls_the_plot_on_every_change():
    seen = []
    w = explorer(lambda rho: seen.append(rho), rho=(0.5, 1.5, 0.5))
    assert seen == [1.0]                      # the first state is drawn at once
    w.children[0].value = 1.5
    assert seen[-1] == 1.5                    # later changes redraw through the widget
    with pytest.raises(ValueError, match="at least one control"):
        explorer(lambda: None)
    with pytest.raises(TypeError, match="plot must be callable"):
        explorer(3, rho=(0.5, 1.5, 0.5))


def test_first_view_is_stored_in_the_output_widget_not_displayed():
    open_before = set(plt.get_fignums())

    def draw(rho=1.0, kind="a"):
        print(f"rho = {rho}, kind = {kind}")
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, rho])
        plt.show()

    w = explorer(draw, rho=(0.5, 1.5, 0.5), kind=["a", "b"])
    outputs = w.out.outputs
    assert [o["output_type"] for o in outputs] == ["stream", "display_data"]
    assert outputs[0]["text"] == "rho = 1.0, kind = a\n"
    png = base64.b64decode(outputs[1]["data"]["image/png"])
    assert png.startswith(b"\x89PNG")
    assert set(plt.get_fignums()) == open_before          # closed: the inline backend shows nothing under the cell


def test_a_failing_first_view_raises():
    def broken(rho=1.0):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        explorer(broken, rho=(0.5, 1.5, 0.5))


def test_nbclient_sends_nothing_on_the_shell_channel_while_an_explorer_cell_runs(monkeypatch, tmp_path):
    """nbclient's Output-widget capture answers every captured output with a comm_msg on the shell
    channel; that send can swallow the wake-up of the cell's execute_reply. An explorer's cell must
    give it nothing to capture, and the page must still get the first view in the widget state."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbclient import output_widget

    sent = []
    monkeypatch.setattr(output_widget.OutputWidget, "sync_state", lambda self: sent.append(self.comm_id))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "from seqlab import widgets\n"
        "def draw(rho=1.0):\n"
        "    fig, ax = plt.subplots()\n"
        "    ax.plot([0, 1], [0, rho])\n"
        "    plt.show()\n"
        "widgets.explorer(draw, rho=(0.5, 1.5, 0.5))")])
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert sent == []                                       # nothing went back to the kernel
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    outputs = [s["state"]["outputs"] for s in state.values() if s["model_name"] == "OutputModel"]
    assert len(outputs) == 1 and outputs[0][0]["data"]["image/png"]   # the static page shows the first view
    cell_outputs = nb.cells[0].outputs
    assert [o["output_type"] for o in cell_outputs] == ["execute_result"]   # the widget, and no stray figure
