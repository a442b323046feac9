"""Printing IR that reads back bit for bit.

xDSL's printer writes a float ``dense<...>`` whose elements compare equal as a splat, and
``0.0 == -0.0``: ``dense<[0.0, -0.0]>`` prints as ``dense<0.000000e+00>`` and reads back
as two +0.0. :class:`ExactPrinter` writes such a constant element by element; everything
else prints as xDSL prints it. ``qopt`` prints its output with it.
"""

from __future__ import annotations

import io

from xdsl.dialects.builtin import AnyFloat, DenseIntOrFPElementsAttr
from xdsl.ir import Attribute, Operation
from xdsl.printer import Printer


def _false_splat(attr: DenseIntOrFPElementsAttr) -> bool:
    """Equal elements (so xDSL prints one) whose bits differ (+0.0 and -0.0)."""
    if not isinstance(attr.get_element_type(), AnyFloat) or len(attr) < 2:
        return False
    raw = attr.data.data
    size = len(raw) // len(attr)
    first = raw[:size]
    return attr.is_splat() and any(raw[k : k + size] != first for k in range(size, len(raw), size))


class ExactPrinter(Printer):
    """xDSL's printer, except that a float dense constant is a splat only when its
    elements have one bit pattern."""

    def print_attribute(self, attribute: Attribute) -> None:
        if isinstance(attribute, DenseIntOrFPElementsAttr) and _false_splat(attribute):
            shape = attribute.get_shape() if attribute.shape_is_complete else (len(attribute),)
            self.print_string("dense<")
            if len(attribute) > 100:  # as xDSL writes a long constant: its bytes
                self.print_string(f'"0x{attribute.data.data.hex().upper()}"')
            else:
                attribute._print_dense_list(attribute.get_values(), list(shape or ()), self)
            self.print_string("> : ")
            self.print_attribute(attribute.get_type())
            return
        super().print_attribute(attribute)


def print_ir(op: Operation, *, generic: bool = False) -> str:
    """The text of `op` as qopt prints it (custom form unless `generic`)."""
    out = io.StringIO()
    ExactPrinter(stream=out, print_generic_format=generic).print_op(op)
    return out.getvalue()
