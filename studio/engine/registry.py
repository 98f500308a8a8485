"""Assembles the registry of every engine Studio has on this machine."""

from __future__ import annotations

from studio.core.registry import Registry
from studio.engine.neural.engines import register_engines as register_neural_engines
from studio.engine.ops import colorize, deblur, degrade, denoise, hdr, inpaint, style, upscale


def build_registry() -> Registry:
    """Built-in engines of every task, then the neural engines of installed models."""
    registry = Registry()
    for module in (denoise, deblur, inpaint, hdr, colorize, style, upscale, degrade):
        for spec in module.ENGINES:
            registry.register(spec)
    register_neural_engines(registry)
    return registry
