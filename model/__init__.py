"""The paper's transformer: configs, the decoder, data, training, checkpoints, the predictor.

Depends on torch and ``algos``; never imports ``compare``.
"""
__all__: list[str] = []
