"""Built-in colorize engines."""

from studio.core.protocol import EngineSpec

ENGINES: list[EngineSpec] = []
