"""What a loaded checkpoint is: its architecture, task, needs, and how to call it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

TILING = ("supported", "discouraged", "internal")


@dataclass(frozen=True)
class SizeRequirements:
    """Input height and width must be multiples of `multiple_of` and at least `minimum`."""

    multiple_of: int = 1
    minimum: int = 0


@dataclass
class Conditioning:
    """Inputs besides the image, as tensors on the model's device (NCHW, float).

    `sigma` is a noise level on the 0-1 scale, `mask` (N,1,H,W) marks pixels to fill,
    `hints` (N,4,H,W) RGBA colour hints, `style` (N,3,h,w) a style image, `alpha` how much of
    the style to apply.
    """

    sigma: float = 0.0
    mask: torch.Tensor | None = None
    hints: torch.Tensor | None = None
    style: torch.Tensor | None = None
    alpha: float = 1.0


ForwardFn = Callable[["torch.nn.Module", "torch.Tensor", Conditioning], "torch.Tensor"]


def plain_forward(module: torch.nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    """Image in [0, 1] to image in [0, 1]."""
    out: torch.Tensor = module(x)
    return out


@dataclass(frozen=True)
class LoadedModel:
    """A checkpoint turned into a runnable module, with what Studio needs to run it well.

    `forward(module, x, cond)` maps an (N, in_channels, H, W) image in [0, 1] to
    (N, out_channels, H*scale, W*scale) in [0, 1]; it hides each family's own pre- and
    post-processing. `extras` names inputs besides the image: "noise_level" (a sigma control),
    "mask", "hints", "style". `tasks` lists every task the model can serve, `task` first.
    """

    architecture: str
    task: str
    module: torch.nn.Module
    in_channels: int
    out_channels: int
    scale: int = 1
    size_requirements: SizeRequirements = SizeRequirements()
    tiling: str = "supported"
    supports_half: bool = False
    supports_bfloat16: bool = False
    extras: frozenset[str] = frozenset()
    tasks: tuple[str, ...] = ()
    forward: ForwardFn = plain_forward
    tile_overlap: int = 32
    licence_note: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tiling not in TILING:
            raise ValueError(f"tiling must be one of {TILING}, got {self.tiling!r}")
        if not self.tasks:
            object.__setattr__(self, "tasks", (self.task,))

    @property
    def parameter_bytes(self) -> int:
        return sum(p.numel() * p.element_size() for p in self.module.parameters())

    def describe(self) -> str:
        """One line for logs and the model manager, e.g. 'FFDNet (denoise, 3->3 channels)'."""
        return (
            f"{self.architecture} ({self.task}, {self.in_channels}->{self.out_channels} channels)"
        )
