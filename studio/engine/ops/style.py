"""Built-in style engines."""

from studio.core.protocol import EngineSpec

ENGINES: list[EngineSpec] = []
