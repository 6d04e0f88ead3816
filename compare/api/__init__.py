"""The library behind every command: functions that take Python values and return data.

:mod:`~compare.api.inputs` checks what a comparison runs over; :mod:`~compare.api.stream`
is the one run loop (a subject and the solvers streamed task by task into aggregates);
:mod:`~compare.api.comparison`, :mod:`~compare.api.ablation`, :mod:`~compare.api.trajectory`
and :mod:`~compare.api.inspection` are the analyses, each returning a result object with a
``write_report(folder)``; :mod:`~compare.api.report` reads a finished folder back. The
public names are re-exported by :mod:`compare`.
"""
