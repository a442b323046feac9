"""The exceptions of the Python API (qopt.api), one documented family.

Everything the API raises on bad input is a ``ValueError`` or a ``TypeError``:

* misuse of an argument (a wrong type, a value out of range, an option that does not apply)
  raises a plain ``TypeError`` (wrong kind of object) or ``ValueError`` (wrong value)
  whose message names the argument;
* IR that does not parse, verify, lower or translate (``qopt.compile``, or a request
  the quant dialect rejects) raises :class:`QuantError`, a ``ValueError`` that carries
  the source location.

This module imports nothing heavy, so ``except qopt.QuantError`` costs no JIT import.
"""

from __future__ import annotations


class QuantError(ValueError):
    """IR that qopt cannot compile: a parse, verifier, lowering or translation error.

    ``str()`` is the mlir-opt style line ``file:line:col: error: message`` when the
    location is known, else the message; ``location`` (``"file:line:col"`` or None) and
    ``message`` (without the location) are attributes.
    """

    def __init__(self, message: str, location: str | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: error: {message}" if location else message)
