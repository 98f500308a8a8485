"""Fast neural style transfer networks (Johnson et al. 2016).

`TransformerNet`: the pytorch/examples layout (`conv1.conv2d`, `in1`, `res1..5`, `deconv1..3`)
at any base width, read from the weights (32 upstream, 8/16 in the for-web retrainings).
`TransformerMobileNet`: mmalotin's variant with MobileNetV2 inverted-residual blocks
(`conv2.conv1/in1/conv2/...`). Both take RGB on the 0-255 scale and return it on that scale.
InstanceNorm makes the result depend on whole-image statistics, so they are never tiled.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from studio.engine.neural.arches._common import drop_keys, load_strict, shape
from studio.engine.neural.model import Conditioning, LoadedModel, SizeRequirements
from studio.engine.neural.safeload import StateDict


class ConvLayer(nn.Module):
    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int, upsample: int = 1
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample > 1:
            x = functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
        out: torch.Tensor = self.conv2d(self.reflection_pad(x))
        return out


class ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(ch, ch, 3, 1)
        self.in1 = nn.InstanceNorm2d(ch, affine=True)
        self.conv2 = ConvLayer(ch, ch, 3, 1)
        self.in2 = nn.InstanceNorm2d(ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.in2(self.conv2(torch.relu(self.in1(self.conv1(x)))))
        return out + x


class TransformerNet(nn.Module):
    def __init__(self, width: int = 32, blocks: int = 5) -> None:
        super().__init__()
        w = width
        self.conv1 = ConvLayer(3, w, 9, 1)
        self.in1 = nn.InstanceNorm2d(w, affine=True)
        self.conv2 = ConvLayer(w, 2 * w, 3, 2)
        self.in2 = nn.InstanceNorm2d(2 * w, affine=True)
        self.conv3 = ConvLayer(2 * w, 4 * w, 3, 2)
        self.in3 = nn.InstanceNorm2d(4 * w, affine=True)
        self.blocks = blocks
        for i in range(1, blocks + 1):
            self.add_module(f"res{i}", ResidualBlock(4 * w))
        self.deconv1 = ConvLayer(4 * w, 2 * w, 3, 1, upsample=2)
        self.in4 = nn.InstanceNorm2d(2 * w, affine=True)
        self.deconv2 = ConvLayer(2 * w, w, 3, 1, upsample=2)
        self.in5 = nn.InstanceNorm2d(w, affine=True)
        self.deconv3 = ConvLayer(w, 3, 9, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.in1(self.conv1(x)))
        y = torch.relu(self.in2(self.conv2(y)))
        y = torch.relu(self.in3(self.conv3(y)))
        for i in range(1, self.blocks + 1):
            y = getattr(self, f"res{i}")(y)
        y = torch.relu(self.in4(self.deconv1(y)))
        y = torch.relu(self.in5(self.deconv2(y)))
        out: torch.Tensor = self.deconv3(y)
        return out


class Bottleneck(nn.Module):
    """MobileNetV2 inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, InstanceNorm."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int = 1) -> None:
        super().__init__()
        mid = expand * in_ch
        self.residual = stride == 1 and in_ch == out_ch
        self.reflection_pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(in_ch, mid, 1, 1, bias=False)
        self.in1 = nn.InstanceNorm2d(mid, affine=True)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, groups=mid, bias=False)
        self.in2 = nn.InstanceNorm2d(mid, affine=True)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, 1, bias=False)
        self.in3 = nn.InstanceNorm2d(out_ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = functional.relu6(self.in1(self.conv1(x)))
        out = functional.relu6(self.in2(self.conv2(self.reflection_pad(out))))
        projected: torch.Tensor = self.in3(self.conv3(out))
        return x + projected if self.residual else projected


class UpsampleBottleneck(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, expand: int) -> None:
        super().__init__()
        self.conv1 = Bottleneck(in_ch, out_ch, 1, expand)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = functional.interpolate(x, mode="nearest", scale_factor=2)
        return torch.relu(self.conv1(x))


class TransformerMobileNet(nn.Module):
    def __init__(self, width: int = 32, expand: int = 1, blocks: int = 5) -> None:
        super().__init__()
        w = width
        self.reflection_pad = nn.ReflectionPad2d(4)
        self.conv1 = nn.Conv2d(3, w, 9, 1, bias=False)
        self.in1 = nn.InstanceNorm2d(w, affine=True)
        self.conv2 = Bottleneck(w, 2 * w, 2, expand)
        self.conv3 = Bottleneck(2 * w, 4 * w, 2, expand)
        self.blocks = blocks
        for i in range(1, blocks + 1):
            self.add_module(f"res{i}", Bottleneck(4 * w, 4 * w, 1, expand))
        self.upconv1 = UpsampleBottleneck(4 * w, 2 * w, expand)
        self.upconv2 = UpsampleBottleneck(2 * w, w, expand)
        self.conv4 = nn.Conv2d(w, 3, 9, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.in1(self.conv1(self.reflection_pad(x))))
        y = self.conv3(self.conv2(y))
        for i in range(1, self.blocks + 1):
            y = getattr(self, f"res{i}")(y)
        y = self.upconv2(self.upconv1(y))
        out: torch.Tensor = self.conv4(self.reflection_pad(y))
        return out


def _count_blocks(state: StateDict) -> int:
    return sum(1 for i in range(1, 64) if f"res{i}.in1.weight" in state)


def detect(state: StateDict) -> LoadedModel | None:
    state = drop_keys(state, r"(^|\.)in\d+\.running_(mean|var)$|num_batches_tracked$")
    if "conv1.conv2d.weight" in state and "deconv3.conv2d.weight" in state:
        width = shape(state, "conv1.conv2d.weight")[0]
        module: nn.Module = TransformerNet(width, _count_blocks(state))
        name = "TransformerNet"
    elif "conv1.weight" in state and "conv2.conv2.weight" in state and "conv4.weight" in state:
        width = shape(state, "conv1.weight")[0]
        expand = shape(state, "conv2.conv1.weight")[0] // width
        module = TransformerMobileNet(width, expand, _count_blocks(state))
        name = "TransformerMobileNet"
    else:
        return None
    return LoadedModel(
        architecture=name,
        task="style",
        module=load_strict(module, state, name),
        in_channels=3,
        out_channels=3,
        size_requirements=SizeRequirements(multiple_of=4),
        tiling="discouraged",
        supports_half=True,
        supports_bfloat16=True,
        forward=_forward,
        info={"width": width},
    )


def _forward(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    out: torch.Tensor = module(x * 255.0)
    return (out / 255.0).clamp(0.0, 1.0)
