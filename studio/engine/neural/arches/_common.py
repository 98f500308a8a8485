"""Shared helpers for our own architecture detectors."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from studio.core.errors import ModelError

if TYPE_CHECKING:
    import torch

    from studio.engine.neural.safeload import StateDict


def seq_indices(state: StateDict, prefix: str, suffix: str = ".weight") -> list[int]:
    """Sorted indices i with `{prefix}{i}{suffix}` in the state dict."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix) + "$")
    return sorted(int(m.group(1)) for key in state if (m := pattern.match(key)))


def shape(state: StateDict, key: str) -> tuple[int, ...]:
    return tuple(state[key].shape)


def drop_keys(state: StateDict, pattern: str) -> StateDict:
    """A copy without the keys matching `pattern` (e.g. stale InstanceNorm running stats)."""
    regex = re.compile(pattern)
    return {k: v for k, v in state.items() if not regex.search(k)}


def load_strict(module: torch.nn.Module, state: StateDict, architecture: str) -> torch.nn.Module:
    """Load weights exactly (every key, every shape) and switch to eval mode."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = str(err).strip().splitlines()
        reason = detail[1].strip() if len(detail) > 1 else detail[0] if detail else ""
        raise ModelError(
            f"{architecture} weights do not fit the architecture: {reason[:300]}"
        ) from None
    return module.eval().requires_grad_(False)
