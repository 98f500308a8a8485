"""The small U-Net colorizer of okidli1/colorization (trained on CIFAR-10).

`enc1..3` (conv, BatchNorm), `up1/up2` transposed convs, `dec1/dec2`, `final` 1x1 conv to
three channels. It takes lightness in [0, 1] and predicts RGB in about [0, 1]; Studio keeps
the input's lightness and takes only the predicted chroma.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from studio.engine.neural.arches._common import load_strict, shape
from studio.engine.neural.arches._lab import lab_to_rgb, rgb_to_lab
from studio.engine.neural.model import Conditioning, LoadedModel, SizeRequirements
from studio.engine.neural.safeload import StateDict


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True))


class UNetColorizer(nn.Module):
    def __init__(self, in_ch: int, width: int, out_ch: int) -> None:
        super().__init__()
        w = width
        self.enc1 = _stage(in_ch, w)
        self.enc2 = _stage(w, 2 * w)
        self.enc3 = _stage(2 * w, 4 * w)
        self.up1 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
        self.dec1 = _stage(4 * w, 2 * w)
        self.up2 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
        self.dec2 = _stage(2 * w, w)
        self.final = nn.Conv2d(w, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(functional.max_pool2d(e1, 2))
        e3 = self.enc3(functional.max_pool2d(e2, 2))
        d1 = self.dec1(torch.cat((self.up1(e3), e2), 1))
        d2 = self.dec2(torch.cat((self.up2(d1), e1), 1))
        out: torch.Tensor = self.final(d2)
        return out


_KEYS = (
    "enc1.0.weight",
    "enc3.0.weight",
    "up1.weight",
    "up2.weight",
    "dec2.0.weight",
    "final.weight",
)


def detect(state: StateDict) -> LoadedModel | None:
    if not all(k in state for k in _KEYS):
        return None
    first = shape(state, "enc1.0.weight")
    module = UNetColorizer(first[1], first[0], shape(state, "final.weight")[0])
    return LoadedModel(
        architecture="UNetColorizer",
        task="colorize",
        module=load_strict(module, state, "U-Net colorizer"),
        in_channels=3,
        out_channels=3,
        size_requirements=SizeRequirements(multiple_of=4),
        supports_half=True,
        supports_bfloat16=True,
        forward=_forward,
        tile_overlap=16,
    )


def _forward(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    lab = rgb_to_lab(x)
    predicted = module(lab[:, :1] / 100.0).clamp(0.0, 1.0)
    ab = rgb_to_lab(predicted)[:, 1:]
    return lab_to_rgb(torch.cat((lab[:, :1], ab), 1))
