"""Built-in deblur engines."""

from studio.core.protocol import EngineSpec

ENGINES: list[EngineSpec] = []
