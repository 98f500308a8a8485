"""`load_model(path)`: a checkpoint file to a runnable LoadedModel, never executing its code.

Detection order: our own architecture classes first (they must win where spandrel guesses
wrong, e.g. KAIR's FFDNet, which spandrel takes for an FDnCNN), then spandrel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from studio.core.errors import ModelError
from studio.engine.neural import spandrel_bridge
from studio.engine.neural.arches import (
    adain,
    cyclegan,
    dncnn_residual,
    fast_style,
    ffdnet,
    unet_colorizer,
    zero_dce,
    zhang_colorizers,
)
from studio.engine.neural.model import LoadedModel
from studio.engine.neural.safeload import StateDict, read_state_dict

Detector = Callable[[StateDict], "LoadedModel | None"]

OWN_DETECTORS: tuple[Detector, ...] = (
    ffdnet.detect,
    dncnn_residual.detect,
    fast_style.detect,
    cyclegan.detect,
    zhang_colorizers.detect,
    zero_dce.detect,
    unet_colorizer.detect,
)


def companion_files(path: Path, architecture: str) -> list[Path]:
    """Files a model reads from beside `path` (AdaIN's decoder reads the VGG encoder)."""
    if architecture != "AdaIN":
        return []
    siblings = [path.parent / name for name in adain.VGG_NAMES]
    return [sibling for sibling in siblings if sibling.is_file()][:1]


def load_model(path: Path) -> LoadedModel:
    """Load a `.pth/.pt/.ckpt/.model/.bin/.safetensors` checkpoint and detect what it is.

    Raises ModelError with a reason a photographer can act on: "pickle needs code execution:
    refused", "unsupported architecture: ...", "super-resolution models are not supported by
    Studio's tasks", damaged files, weights that do not fit.
    """
    path = Path(path)
    state = read_state_dict(path)
    if not state:
        raise ModelError(f"{path.name} holds no network weights")
    return detect(state, path)


def detect(state: StateDict, path: Path | None = None) -> LoadedModel:
    """The LoadedModel for a state dict (our classes first, then spandrel)."""
    model = _detect(state, path)
    flush_denormals(model.module)
    return model


def _detect(state: StateDict, path: Path | None) -> LoadedModel:
    for detector in OWN_DETECTORS:
        model = detector(state)
        if model is not None:
            return model
    model = adain.detect(state, path)
    if model is not None:
        return model
    return spandrel_bridge.load(state)


def flush_denormals(module: torch.nn.Module) -> None:
    """Zero the subnormal weights some checkpoints carry (Zero-DCE's has thousands).

    They change no result but make CPU convolutions up to ten times slower.
    """
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            if tensor.is_floating_point():
                tensor[tensor.abs() < torch.finfo(tensor.dtype).tiny] = 0.0
