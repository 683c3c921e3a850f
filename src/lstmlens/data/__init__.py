"""Data for the tasks: time series (:mod:`.series`, read with :mod:`.dialect` and
:mod:`.timegrid`; :mod:`.windows`), text
(:mod:`.text`), labelled sequences (:mod:`.sequences`) and the offline default
datasets (:mod:`.datasets`).

Import from the submodules (``from lstmlens.data.series import read_csv``); this
package imports nothing itself so that loading one kind of data stays cheap.
"""

__all__: list[str] = []
