"""Engines: device choice, tiled execution, models and the operations. No Qt."""
