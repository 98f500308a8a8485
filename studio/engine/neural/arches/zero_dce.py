"""Zero-DCE (Guo, Li et al. 2020) low-light curve estimation, Li-Chongyi/Zero-DCE layout.

Seven 3x3 convs (`e_conv1..7`) predict 8 RGB curve maps r; the photo is brightened by
iterating x <- x + r (x^2 - x).
"""

from __future__ import annotations

import torch
from torch import nn

from studio.engine.neural.arches._common import load_strict, shape
from studio.engine.neural.model import Conditioning, LoadedModel
from studio.engine.neural.safeload import StateDict


class ZeroDCE(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        f = features
        self.e_conv1 = nn.Conv2d(3, f, 3, 1, 1)
        self.e_conv2 = nn.Conv2d(f, f, 3, 1, 1)
        self.e_conv3 = nn.Conv2d(f, f, 3, 1, 1)
        self.e_conv4 = nn.Conv2d(f, f, 3, 1, 1)
        self.e_conv5 = nn.Conv2d(2 * f, f, 3, 1, 1)
        self.e_conv6 = nn.Conv2d(2 * f, f, 3, 1, 1)
        self.e_conv7 = nn.Conv2d(2 * f, 24, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.relu
        x1 = relu(self.e_conv1(x))
        x2 = relu(self.e_conv2(x1))
        x3 = relu(self.e_conv3(x2))
        x4 = relu(self.e_conv4(x3))
        x5 = relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = relu(self.e_conv6(torch.cat([x2, x5], 1)))
        curves = torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        for r in torch.split(curves, 3, dim=1):
            x = x + r * (x * x - x)
        return x


_KEYS = [f"e_conv{i}.weight" for i in range(1, 8)]


def detect(state: StateDict) -> LoadedModel | None:
    if not all(k in state for k in _KEYS) or len(state) != 14:
        return None
    if shape(state, "e_conv7.weight")[0] != 24:
        return None
    module = load_strict(ZeroDCE(shape(state, "e_conv1.weight")[0]), state, "Zero-DCE")
    return LoadedModel(
        architecture="Zero-DCE",
        task="hdr",
        module=module,
        in_channels=3,
        out_channels=3,
        supports_half=True,
        supports_bfloat16=True,
        forward=_forward,
        tile_overlap=16,
        licence_note="The published Zero-DCE weights are for non-commercial use (CC BY-NC 4.0).",
    )


def _forward(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    out: torch.Tensor = module(x.clamp(0.0, 1.0))
    return out.clamp(0.0, 1.0)
