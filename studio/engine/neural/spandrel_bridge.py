"""Architectures spandrel detects, mapped onto Studio's tasks.

`spandrel_extra_arches` (MAT, Restormer, MPRNet, DDColor, ...) is used only when the user has
installed it: the package is MIT but the architectures it carries are licensed for
non-commercial use (CC BY-NC 4.0, Academic Public License, Alibaba academic licence), so
Studio does not depend on it and marks models loaded through it.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from typing import Any

import torch
from spandrel import (
    ImageModelDescriptor,
    MaskedImageModelDescriptor,
    ModelLoader,
    ModelTiling,
    UnsupportedModelError,
)

from studio.core.errors import ModelError
from studio.engine.neural.model import Conditioning, LoadedModel, SizeRequirements
from studio.engine.neural.safeload import StateDict

INPAINT = frozenset({"LaMa", "MAT"})
DENOISE = frozenset({"DnCNN", "DRUNet", "SCUNet", "FFDNet", "KBNet", "Uformer", "FBCNN"})
DEBLUR = frozenset({"NAFNet", "FFTformer", "MPRNet"})
COLORIZE = frozenset({"DDColor"})
LOW_LIGHT = frozenset({"RetinexFormer", "HVICIDNet"})
NOISE_LEVEL_INPUT = frozenset({"DRUNet"})
EXTRA_LICENCE = "Its architecture code (spandrel_extra_arches) is licensed for non-commercial use."

_TILING = {
    ModelTiling.SUPPORTED: "supported",
    ModelTiling.DISCOURAGED: "discouraged",
    ModelTiling.INTERNAL: "internal",
}


@cache
def _extra_arch_ids() -> frozenset[str]:
    """Install spandrel_extra_arches when the user has it; the ids it adds."""
    if importlib.util.find_spec("spandrel_extra_arches") is None:
        return frozenset()
    import spandrel_extra_arches

    return frozenset(
        support.architecture.id for support in spandrel_extra_arches.install(ignore_duplicates=True)
    )


def load(state: StateDict) -> LoadedModel:
    """Detect and load with spandrel, or raise ModelError with the reason."""
    extra = _extra_arch_ids()
    try:
        descriptor = ModelLoader().load_from_state_dict(state)
    except UnsupportedModelError:
        raise ModelError(f"unsupported architecture: {_summary(state)}") from None
    except (RuntimeError, ValueError, KeyError, AssertionError, IndexError) as err:
        raise ModelError(
            f"The model's weights do not fit its architecture: {_first(err)}"
        ) from None
    arch = descriptor.architecture.id
    tasks = _tasks(arch, descriptor.purpose, state)
    return LoadedModel(
        architecture=arch,
        task=tasks[0],
        tasks=tasks,
        module=descriptor.model.eval().requires_grad_(False),
        in_channels=descriptor.input_channels,
        out_channels=descriptor.output_channels,
        scale=descriptor.scale,
        size_requirements=SizeRequirements(
            multiple_of=descriptor.size_requirements.multiple_of,
            minimum=descriptor.size_requirements.minimum,
        ),
        # Inpainting needs the context around the hole: never tile it.
        tiling="discouraged" if tasks[0] == "inpaint" else _TILING[descriptor.tiling],
        supports_half=descriptor.supports_half,
        supports_bfloat16=descriptor.supports_bfloat16,
        extras=_extras(arch, descriptor),
        forward=_forward_for(arch, descriptor),
        licence_note=EXTRA_LICENCE if arch in extra else "",
        info={"tags": list(descriptor.tags), "loader": "spandrel"},
    )


def _tasks(arch: str, purpose: str, state: StateDict) -> tuple[str, ...]:
    if purpose == "SR":
        return ("upscale",)
    if purpose == "FaceSR":
        raise ModelError(f"{arch} restores faces, which none of Studio's tasks does")
    if purpose == "Inpainting" or arch in INPAINT:
        return ("inpaint",)
    if arch in COLORIZE:
        return ("colorize",)
    if arch in LOW_LIGHT:
        return ("hdr",)
    if arch == "Restormer":
        # The authors' denoising models use BiasFree LayerNorm, the deblurring ones WithBias.
        with_bias = "encoder_level1.0.norm1.body.bias" in state
        return ("deblur", "denoise") if with_bias else ("denoise", "deblur")
    if arch in DEBLUR:
        return ("deblur", "denoise")
    if arch in DENOISE:
        return ("denoise", "deblur")
    if purpose == "Restoration":
        return ("denoise", "deblur")
    raise ModelError(f"unsupported architecture: {arch} ({purpose}) serves none of Studio's tasks")


def _extras(arch: str, descriptor: Any) -> frozenset[str]:
    if isinstance(descriptor, MaskedImageModelDescriptor):
        return frozenset({"mask"})
    if arch in NOISE_LEVEL_INPUT or "FDnCNN" in descriptor.tags:
        return frozenset({"noise_level"})
    return frozenset()


def _forward_for(arch: str, descriptor: Any) -> Any:
    if isinstance(descriptor, MaskedImageModelDescriptor):

        def masked(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
            if cond.mask is None:
                raise ModelError(f"{arch} inpainting needs a mask")
            out: torch.Tensor = descriptor(x, (cond.mask > 0.5).to(x))
            return out

        return masked
    if arch in NOISE_LEVEL_INPUT or "FDnCNN" in descriptor.tags:

        def with_noise_map(
            module: torch.nn.Module, x: torch.Tensor, cond: Conditioning
        ) -> torch.Tensor:
            noise_map = torch.full_like(x[:, :1], float(cond.sigma))
            out: torch.Tensor = module(torch.cat((x, noise_map), 1))
            return out.clamp(0.0, 1.0)

        return with_noise_map
    assert isinstance(descriptor, ImageModelDescriptor)

    def plain(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        out: torch.Tensor = descriptor(x)
        return out

    return plain


def _summary(state: StateDict) -> str:
    keys = list(state)
    return f"{len(keys)} tensors, first keys: {', '.join(keys[:3])}"


def _first(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__
