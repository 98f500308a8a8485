"""Built-in degrade engines."""

from studio.core.protocol import EngineSpec

ENGINES: list[EngineSpec] = []
