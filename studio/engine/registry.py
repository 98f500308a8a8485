"""Assembles the registry of every engine Studio has on this machine."""

from __future__ import annotations

import dataclasses
from typing import Any

from studio.core.registry import Registry
from studio.engine.neural.engines import register_engines as register_neural_engines
from studio.engine.ops import colorize, deblur, degrade, denoise, hdr, inpaint, style, upscale


def build_registry() -> Registry:
    """Built-in engines of every task, then the neural engines of installed models."""
    registry = Registry()
    for module in (denoise, deblur, inpaint, hdr, colorize, style, upscale, degrade):
        for spec in module.ENGINES:
            registry.register(spec)
    register_neural_engines(registry, _installed_models())
    apply_defaults(registry)
    return registry


def _installed_models() -> list[Any]:
    """The model store's records (none without a model manager, or with a damaged store)."""
    try:
        from studio.engine.models import store
    except ImportError:
        return []
    try:
        return list(store.installed_models())
    except Exception:  # a damaged model store must not keep the registry from building
        return []


def apply_defaults(registry: Registry) -> None:
    """Make each task's pinned engine, else its best-ranked installed model, the default."""
    try:
        from studio.engine.models.defaults import default_choice
    except ImportError:
        return
    for task in registry.tasks():
        specs = registry.engines(task)
        choice = default_choice(task, [spec.id for spec in specs])
        if choice is None:
            continue
        for spec in specs:
            chosen = spec.id == choice.engine_id
            if chosen or spec.default:
                reason = choice.reason if chosen else ""
                registry.register(dataclasses.replace(spec, default=chosen, default_reason=reason))
