"""Built-in inpaint engines."""

from studio.core.protocol import EngineSpec

ENGINES: list[EngineSpec] = []
