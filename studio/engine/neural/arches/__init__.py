"""Architectures spandrel lacks (or gets wrong), each loading its authors' exact key layout.

Each module has `detect(state) -> LoadedModel | None`: None when the keys are not its layout,
a LoadedModel when they are, ModelError when they are but the weights do not fit.
"""
