"""The ``lstmlens`` command line: ``main.py`` dispatches, one module per subcommand.

Only this package prints; everything below it reports through a reporter object.
"""

__all__: list[str] = []
