"""A layer that computes one thing by several equal forms, and keeps which one it uses (chapters 2–14).

``form`` is a validated attribute: reading it gives the form the layer runs by default, setting it to
anything outside ``forms`` raises a ``ValueError`` that lists the forms. ``MultiHeadAttention`` (its
forms are those of ``seqlab.ops.attention``) and every ``Mixer`` (its family's registered forms) share it.
"""
from __future__ import annotations


class HasForms:
    """``form``, checked against ``forms`` whenever it is set (chapters 2–14).

    A subclass gives ``forms`` (a tuple, or a property) and keeps the chosen form at ``form_attr``:
    an attribute of its own (``"_form"``, the default) or of a part of it (``"config.form"``).
    """

    forms: tuple[str, ...] = ()
    form_attr: str = "_form"

    def _form_home(self):
        *path, name = self.form_attr.split(".")
        home = self
        for part in path:
            home = getattr(home, part)
        return home, name

    @property
    def form(self) -> str:
        """The form ``forward`` uses by default (settable, one of ``forms``)."""
        home, name = self._form_home()
        return getattr(home, name)

    @form.setter
    def form(self, value: str) -> None:
        if value not in self.forms:
            raise ValueError(f"form must be one of {', '.join(map(repr, self.forms))}, got {value!r}")
        home, name = self._form_home()
        setattr(home, name, value)
