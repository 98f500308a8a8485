"""CycleGAN's ResNet generator (Zhu et al. 2017), junyanz/pytorch-CycleGAN-and-pix2pix layout.

`model.1` 7x7 conv, two stride-2 convs, n ResNet blocks (`model.N.conv_block.{1,5}`), two
transposed convs, a 7x7 conv and tanh. The published photo-to-painting generators use
InstanceNorm without affine parameters, so every conv has a bias. Input and output in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from studio.engine.neural.arches._common import drop_keys, load_strict, seq_indices, shape
from studio.engine.neural.model import Conditioning, LoadedModel, SizeRequirements
from studio.engine.neural.safeload import StateDict


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.conv_block(x)
        return out


def resnet_generator(in_ch: int, out_ch: int, ngf: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        nn.Conv2d(in_ch, ngf, 7),
        nn.InstanceNorm2d(ngf),
        nn.ReLU(True),
    ]
    for mult in (1, 2):
        layers += [
            nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
            nn.InstanceNorm2d(ngf * mult * 2),
            nn.ReLU(True),
        ]
    layers += [ResnetBlock(ngf * 4) for _ in range(blocks)]
    for mult in (4, 2):
        layers += [
            nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, padding=1, output_padding=1),
            nn.InstanceNorm2d(ngf * mult // 2),
            nn.ReLU(True),
        ]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class CycleGANGenerator(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, ngf: int, blocks: int) -> None:
        super().__init__()
        self.model = resnet_generator(in_ch, out_ch, ngf, blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.model(x)
        return out


def detect(state: StateDict) -> LoadedModel | None:
    state = drop_keys(state, r"running_(mean|var)$|num_batches_tracked$")
    blocks = seq_indices(state, "model.", ".conv_block.1.weight")
    if not blocks or "model.1.weight" not in state:
        return None
    first = shape(state, "model.1.weight")
    if first[2:] != (7, 7):
        return None
    last = max(seq_indices(state, "model."))
    out_ch = shape(state, f"model.{last}.weight")[0]
    module = CycleGANGenerator(first[1], out_ch, first[0], len(blocks))
    return LoadedModel(
        architecture="CycleGAN",
        task="style",
        module=load_strict(module, state, "CycleGAN generator"),
        in_channels=first[1],
        out_channels=out_ch,
        size_requirements=SizeRequirements(multiple_of=4),
        tiling="discouraged",
        supports_half=True,
        supports_bfloat16=True,
        forward=_forward,
        info={"blocks": len(blocks), "ngf": first[0]},
    )


def _forward(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    out: torch.Tensor = module(x * 2.0 - 1.0)
    return ((out + 1.0) / 2.0).clamp(0.0, 1.0)
