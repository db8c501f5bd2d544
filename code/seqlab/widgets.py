"""Interactive explorers for the chapters (ipywidgets), each with a static stand-in.

A static page has no kernel: a widget shows its first state and its
callbacks never run. So every explorer in the book follows one convention:
the chapter first draws a *static figure* that shows what the explorer shows
(a grid of settings), and then offers the explorer, "launch the chapter to
interact". ``explorer`` builds the widget; without ipywidgets it says how to
get it instead of failing.

Why the first view is drawn in the kernel (the chapter 9 hang). ipywidgets'
``interactive`` draws its first view inside an ``Output`` widget: the kernel
asks the *front end* to capture the cell's output, and the front end sends the
captured output back to the kernel as a ``comm_msg`` on the shell channel. A
notebook run by nbclient (the book build, jupyter-cache) is such a front end,
and it sends that message while it is waiting, on the same shell socket, for
the cell's ``execute_reply``. jupyter_client's ``Session.send`` writes to an
asyncio socket through a blocking *shadow* of it, and a send makes libzmq
process the socket's pending commands, among them "a message has arrived",
which is also what wakes the asyncio poller (ZeroMQ's file descriptor is
edge-triggered). When the reply lands just before the send, the wake-up is
used up, nbclient's poll sleeps until its cell timeout and only then finds the
reply. A busy CPU widens that window (in the authors' tests, not rerun by the
build, it appeared in 2 of 7 runs beside one busy process, 3 of 3 beside two). So ``explorer`` renders its first view
itself, in the kernel, and *sets* the ``Output`` widget's outputs: the front
end has nothing to capture and sends nothing. Later views (a reader moving a
control in a live kernel) are drawn the usual way.
"""
from __future__ import annotations

import base64
import contextlib
import io
from typing import Callable


def _render_first_view(plot: Callable[..., None], values: dict) -> tuple[dict, ...]:
    """Call ``plot(**values)`` and return what it showed as nbformat outputs, without displaying anything.

    Figures the call opens are rendered to PNG and closed (so the inline
    backend does not show them under the cell as well); what it prints becomes
    a stream output. ``plt.show`` does nothing during the call.
    """
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    printed = io.StringIO()
    show = plt.show
    plt.show = lambda *args, **kwargs: None
    try:
        with contextlib.redirect_stdout(printed):
            plot(**values)
    finally:
        plt.show = show
    outputs: list[dict] = []
    if printed.getvalue():
        outputs.append({"output_type": "stream", "name": "stdout", "text": printed.getvalue()})
    for num in sorted(set(plt.get_fignums()) - before):
        fig = plt.figure(num)
        png = io.BytesIO()
        fig.savefig(png, format="png", bbox_inches="tight")
        plt.close(fig)
        outputs.append({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": base64.b64encode(png.getvalue()).decode("ascii"),
                                 "text/plain": f"<Figure {num}>"}})
    return tuple(outputs)


def explorer(plot: Callable[..., None], **controls):
    """An ``ipywidgets.interactive`` that calls ``plot(**values)`` whenever a control changes (chapter 3).

    Controls are ipywidgets abbreviations (``rho=(0.1, 2.0, 0.1)``,
    ``nonlinearity=["tanh", "relu"]``) or widgets. The first view is drawn in
    the kernel and stored in the widget (see the module's docstring: no output
    goes through the front end while the cell runs); every later change redraws
    through the widget's output area as usual. Returns the widget, or a message
    string when ipywidgets is not installed.
    """
    if not callable(plot):
        raise TypeError(f"plot must be callable, got {type(plot).__name__}")
    if not controls:
        raise ValueError("explorer needs at least one control, e.g. rho=(0.1, 2.0, 0.1)")
    try:
        import ipywidgets
    except ImportError:
        return "ipywidgets is not installed: `pip install ipywidgets` to use this explorer (the static figure above shows the same)."

    class Explorer(ipywidgets.interactive):
        first_view_drawn = False

        def update(self, *args):
            if self.first_view_drawn:
                return super().update(*args)
            self.first_view_drawn = True
            self.kwargs = {w._kwarg: w.get_interact_value() for w in self.kwargs_widgets}
            self.out.outputs = _render_first_view(self.f, self.kwargs)

    return Explorer(plot, **controls)
