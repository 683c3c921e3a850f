"""The compiled CPU kernel: the fused scheme in C++, built on first use, cached per user.

``lstm_native`` / ``gru_native`` / ``rnn_native`` have the contracts of the fused path and fall
back to it (with one warning line) where no compiler is found or the build fails; ``status()``
says which. See :mod:`.loader` (build and cache) and :mod:`.functions` (autograd Functions).
"""

from .functions import gru_native, lstm_native, native_ops, rnn_native
from .loader import NativeStatus, cache_dir, status

__all__ = [
    "NativeStatus",
    "cache_dir",
    "gru_native",
    "lstm_native",
    "native_ops",
    "rnn_native",
    "status",
]
