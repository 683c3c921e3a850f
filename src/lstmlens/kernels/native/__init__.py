"""The compiled CPU kernel: the fused scheme in C++, built on first use, cached per user.

``lstm_native`` / ``gru_native`` / ``rnn_native`` have the contracts of the fused path;
:class:`Native` registers them as the ``native`` backend, whose availability is ``status()``
and whose fallback (``fused``, where no compiler is found or the build fails) the registry
runs; :class:`Wavefront` is the schedule that runs a whole stack at once. See :mod:`.loader`
(build and cache), :mod:`.functions` (autograd Functions), :mod:`.backend` (the registry's
view) and :mod:`.wavefront` / :mod:`.stack` (whole stacks).
"""

from .backend import Native
from .functions import gru_native, lstm_native, native_ops, rnn_native
from .loader import NativeStatus, cache_dir, status
from .wavefront import Wavefront

__all__ = [
    "Native",
    "NativeStatus",
    "Wavefront",
    "cache_dir",
    "gru_native",
    "lstm_native",
    "native_ops",
    "rnn_native",
    "status",
]
