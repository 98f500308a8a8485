"""Built-in hdr engines."""

from studio.core.protocol import EngineSpec

ENGINES: list[EngineSpec] = []
