"""Representations of a trained model, tied to the algorithms: attention maps, per-head PCA
("circles of circles"), embedding planes and Pearson ("kaleidoscope") maps, each a function
of a checkpoint and a prompt set returning arrays and tables, with a score beside it.

Depends on ``algos`` and ``model`` only; ``interp.plots`` draws, ``compare.cli.inspect``
writes the report.
"""
