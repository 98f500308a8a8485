"""FFDNet (Zhang et al. 2018) in KAIR's layout and in the IPOL release layout.

KAIR (`model.{0,2,...}` convs with bias): pixel-unshuffle, noise map appended last, predicts
the clean image. IPOL (`intermediate_dncnn.itermediate_dncnn.*`, BatchNorm, no bias): noise
map first, predicts the noise. Both take sigma on the 0-1 scale.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from studio.engine.neural.arches._common import load_strict, seq_indices, shape
from studio.engine.neural.model import Conditioning, LoadedModel, SizeRequirements
from studio.engine.neural.safeload import StateDict

_IPOL = "intermediate_dncnn.itermediate_dncnn."


class KairFFDNet(nn.Module):
    def __init__(self, channels: int, features: int, layers: int) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(4 * channels + 1, features, 3, padding=1), nn.ReLU()]
        for _ in range(layers - 2):
            body += [nn.Conv2d(features, features, 3, padding=1), nn.ReLU()]
        body.append(nn.Conv2d(features, 4 * channels, 3, padding=1))
        self.model = nn.Sequential(*body)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        down = functional.pixel_unshuffle(x, 2)
        noise_map = sigma.view(-1, 1, 1, 1).expand(down.shape[0], 1, *down.shape[-2:])
        return functional.pixel_shuffle(self.model(torch.cat((down, noise_map), 1)), 2)


class IntermediateDnCNN(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, features: int, layers: int) -> None:
        super().__init__()
        body: list[nn.Module] = [nn.Conv2d(in_ch, features, 3, padding=1, bias=False), nn.ReLU()]
        for _ in range(layers - 2):
            body += [
                nn.Conv2d(features, features, 3, padding=1, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(),
            ]
        body.append(nn.Conv2d(features, out_ch, 3, padding=1, bias=False))
        self.itermediate_dncnn = nn.Sequential(*body)


class IpolFFDNet(nn.Module):
    def __init__(self, channels: int, features: int, layers: int) -> None:
        super().__init__()
        self.channels = channels
        self.intermediate_dncnn = IntermediateDnCNN(5 * channels, 4 * channels, features, layers)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        down = functional.pixel_unshuffle(x, 2)
        noise_map = sigma.view(-1, 1, 1, 1).expand(down.shape[0], self.channels, *down.shape[-2:])
        body = self.intermediate_dncnn.itermediate_dncnn
        noise = functional.pixel_shuffle(body(torch.cat((noise_map, down), 1)), 2)
        return x - noise


def detect(state: StateDict) -> LoadedModel | None:
    if f"{_IPOL}0.weight" in state:
        return _load_ipol(state)
    convs = seq_indices(state, "model.")
    if len(convs) < 3 or convs != list(range(0, 2 * len(convs), 2)):
        return None
    if any(f"model.{i}.bias" not in state for i in convs):
        return None
    in_ch = shape(state, "model.0.weight")[1]
    out_ch = shape(state, f"model.{convs[-1]}.weight")[0]
    if out_ch not in (4, 12) or in_ch != out_ch + 1:
        return None
    channels = out_ch // 4
    module = KairFFDNet(channels, shape(state, "model.0.weight")[0], len(convs))
    return _descriptor(load_strict(module, state, "FFDNet"), channels, "KAIR")


def _load_ipol(state: StateDict) -> LoadedModel | None:
    convs = [i for i in seq_indices(state, _IPOL) if f"{_IPOL}{i}.running_mean" not in state]
    first = shape(state, f"{_IPOL}0.weight")
    channels = shape(state, f"{_IPOL}{convs[-1]}.weight")[0] // 4
    if channels not in (1, 3) or first[1] != 5 * channels:
        return None
    module = IpolFFDNet(channels, first[0], len(convs))
    return _descriptor(load_strict(module, state, "FFDNet"), channels, "IPOL")


def _forward(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    sigma = torch.full((x.shape[0],), float(cond.sigma), dtype=x.dtype, device=x.device)
    out: torch.Tensor = module(x, sigma)
    return out


def _descriptor(module: nn.Module, channels: int, layout: str) -> LoadedModel:
    return LoadedModel(
        architecture="FFDNet",
        task="denoise",
        module=module,
        in_channels=channels,
        out_channels=channels,
        size_requirements=SizeRequirements(multiple_of=2),
        supports_half=True,
        supports_bfloat16=True,
        extras=frozenset({"noise_level"}),
        forward=_forward,
        tile_overlap=32,
        info={"layout": layout},
    )
