"""Numpy-and-pydantic core: images, errors, parameters, the job protocol. No Qt, no torch."""
