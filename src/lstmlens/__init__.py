"""lstmlens: LSTM networks built from their gates.

A drop-in for ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with the variants of Greff et al. (2017),
layer norm, recurrent dropout and zoneout, fast fused kernels, task models (forecasting, text,
classification) and a lens on every gate of every step.
"""

from . import export as export
from .cells import GRUCell as GRUCell
from .cells import LSTMCell as LSTMCell
from .cells import RNNCell as RNNCell
from .forecaster import Forecaster as Forecaster
from .io import load_run as load_run
from .kernels.registry import backends as backends
from .layers import GRU as GRU
from .layers import LSTM as LSTM
from .layers import RNN as RNN
from .lens.trace import Trace as Trace
from .lens.trace import inspect as inspect
from .stream import Stream as Stream
from .variants import PRESETS as PRESETS
from .variants import Variant as Variant

__version__ = "0.1.0"

__all__ = [
    "Forecaster",
    "GRU",
    "GRUCell",
    "LSTM",
    "LSTMCell",
    "PRESETS",
    "RNN",
    "RNNCell",
    "Stream",
    "Trace",
    "Variant",
    "backends",
    "inspect",
    "load_run",
    "__version__",
]
