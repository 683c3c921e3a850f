"""The lens: every gate of every step, as numbers (trace, stats), plots and an HTML page."""

from .compare import compare_page as compare_page
from .reach import memory_reach as memory_reach
from .trace import GATE_NAMES as GATE_NAMES
from .trace import VOCABULARY as VOCABULARY
from .trace import Trace as Trace
from .trace import inspect as inspect

__all__ = ["GATE_NAMES", "VOCABULARY", "Trace", "compare_page", "inspect", "memory_reach"]
