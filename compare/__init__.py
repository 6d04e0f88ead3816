"""The comparison engine: k-shot grids -> predictions -> per-cell table -> summaries -> reports."""
__all__: list[str] = []
