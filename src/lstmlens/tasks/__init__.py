"""Tasks: a model (LSTM layers + a head) and the task logic around it, one module per task."""

__all__: list[str] = []
