"""DnCNN trained to predict the noise residual, in SaoYan/DnCNN-PyTorch's layout.

`dncnn.{0,2,3,...}`: conv without bias, then (conv, BatchNorm, ReLU) blocks, then a conv
that outputs the noise; the clean image is input minus output.
"""

from __future__ import annotations

import torch
from torch import nn

from studio.engine.neural.arches._common import load_strict, seq_indices, shape
from studio.engine.neural.model import Conditioning, LoadedModel
from studio.engine.neural.safeload import StateDict


class ResidualDnCNN(nn.Module):
    def __init__(self, channels: int, features: int, layers: int) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1, bias=False), nn.ReLU()]
        for _ in range(layers - 2):
            body += [
                nn.Conv2d(features, features, 3, padding=1, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(),
            ]
        body.append(nn.Conv2d(features, channels, 3, padding=1, bias=False))
        self.dncnn = nn.Sequential(*body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise: torch.Tensor = self.dncnn(x)
        return x - noise


def detect(state: StateDict) -> LoadedModel | None:
    if "dncnn.0.weight" not in state or "dncnn.0.bias" in state:
        return None
    convs = [i for i in seq_indices(state, "dncnn.") if f"dncnn.{i}.running_mean" not in state]
    first = shape(state, "dncnn.0.weight")
    channels = first[1]
    module = load_strict(ResidualDnCNN(channels, first[0], len(convs)), state, "DnCNN")
    return LoadedModel(
        architecture="DnCNN",
        task="denoise",
        module=module,
        in_channels=channels,
        out_channels=channels,
        supports_half=True,
        supports_bfloat16=True,
        forward=_forward,
        tile_overlap=24,
        info={"layout": "SaoYan", "layers": len(convs)},
    )


def _forward(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    out: torch.Tensor = module(x)
    return out
