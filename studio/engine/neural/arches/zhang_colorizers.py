"""Zhang et al.'s colorization networks, richzhang/colorization layout.

ECCV 2016 (`model1.0 ... model8.6`, `model_out`): L -> 313 colour classes -> ab, automatic.
SIGGRAPH 2017 (`model1 ... model10`, `model3short8`, `model_out.0`): L plus user hints
(ab and a mask) -> ab. Both see the image at 256x256 (as the authors' demo does) and the
predicted ab is upsampled and joined with the full-resolution L.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional

from studio.engine.neural.arches._common import load_strict
from studio.engine.neural.arches._lab import lab_to_rgb, rgb_to_lab
from studio.engine.neural.model import Conditioning, LoadedModel
from studio.engine.neural.safeload import StateDict

WORKING_SIZE = 256
L_CENT, L_NORM, AB_NORM = 50.0, 100.0, 110.0


def _block(
    channels: list[int],
    stride_last: int = 1,
    dilation: int = 1,
    norm: bool = True,
    init_relu: bool = False,
) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ReLU(True)] if init_relu else []
    for i, (cin, cout) in enumerate(itertools.pairwise(channels)):
        stride = stride_last if i == len(channels) - 2 else 1
        layers += [
            nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
            nn.ReLU(True),
        ]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCVGenerator(nn.Module):
    def __init__(self, width: int = 64, classes: int = 313) -> None:
        super().__init__()
        w = width
        self.model1 = _block([1, w, w], stride_last=2)
        self.model2 = _block([w, 2 * w, 2 * w], stride_last=2)
        self.model3 = _block([2 * w, 4 * w, 4 * w, 4 * w], stride_last=2)
        self.model4 = _block([4 * w, 8 * w, 8 * w, 8 * w])
        self.model5 = _block([8 * w] * 4, dilation=2)
        self.model6 = _block([8 * w] * 4, dilation=2)
        self.model7 = _block([8 * w] * 4)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1), nn.ReLU(True),
            nn.Conv2d(4 * w, 4 * w, 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(4 * w, 4 * w, 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(4 * w, classes, 1),
        )  # fmt: skip
        self.model_out = nn.Conv2d(classes, 2, 1, bias=False)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = (lightness - L_CENT) / L_NORM
        for name in (
            "model1",
            "model2",
            "model3",
            "model4",
            "model5",
            "model6",
            "model7",
            "model8",
        ):
            x = getattr(self, name)(x)
        ab = self.model_out(torch.softmax(x, dim=1))
        return functional.interpolate(ab, scale_factor=4, mode="bilinear") * AB_NORM


class SIGGRAPHGenerator(nn.Module):
    def __init__(self, width: int = 64, classes: int = 529) -> None:
        super().__init__()
        w = width
        self.model1 = _block([4, w, w])
        self.model2 = _block([w, 2 * w, 2 * w])
        self.model3 = _block([2 * w, 4 * w, 4 * w, 4 * w])
        self.model4 = _block([4 * w, 8 * w, 8 * w, 8 * w])
        self.model5 = _block([8 * w] * 4, dilation=2)
        self.model6 = _block([8 * w] * 4, dilation=2)
        self.model7 = _block([8 * w] * 4)
        self.model8up = nn.Sequential(nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1))
        self.model3short8 = nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, 1, 1))
        self.model8 = _block([4 * w] * 3, init_relu=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1))
        self.model2short9 = nn.Sequential(nn.Conv2d(2 * w, 2 * w, 3, 1, 1))
        self.model9 = _block([2 * w, 2 * w], init_relu=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(2 * w, 2 * w, 4, 2, 1))
        self.model1short10 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, 1, 1))
        self.model10 = nn.Sequential(
            nn.ReLU(True), nn.Conv2d(2 * w, 2 * w, 3, 1, 1), nn.LeakyReLU(0.2)
        )
        self.model_class = nn.Sequential(nn.Conv2d(4 * w, classes, 1))
        self.model_out = nn.Sequential(nn.Conv2d(2 * w, 2, 1), nn.Tanh())

    def forward(
        self, lightness: torch.Tensor, ab: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        x = torch.cat(((lightness - L_CENT) / L_NORM, ab / AB_NORM, mask), 1)
        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        x = self.model4(conv3[:, :, ::2, ::2])
        x = self.model7(self.model6(self.model5(x)))
        x = self.model8(self.model8up(x) + self.model3short8(conv3))
        x = self.model9(self.model9up(x) + self.model2short9(conv2))
        x = self.model10(self.model10up(x) + self.model1short10(conv1))
        out: torch.Tensor = self.model_out(x) * AB_NORM
        return out


def detect(state: StateDict) -> LoadedModel | None:
    if "model1.0.weight" not in state or "model3.0.weight" not in state:
        return None
    width = int(state["model1.0.weight"].shape[0])
    if "model_out.weight" in state:
        classes = int(state["model_out.weight"].shape[1])
        module: nn.Module = load_strict(ECCVGenerator(width, classes), state, "ECCV16 colorizer")
        return _descriptor(module, "ECCV16", frozenset(), _forward_eccv)
    if "model_out.0.weight" in state and "model3short8.0.weight" in state:
        has_class = "model_class.0.weight" in state
        classes = int(state["model_class.0.weight"].shape[0]) if has_class else 529
        module = load_strict(SIGGRAPHGenerator(width, classes), state, "SIGGRAPH17 colorizer")
        return _descriptor(module, "SIGGRAPH17", frozenset({"hints"}), _forward_siggraph)
    return None


def _descriptor(
    module: nn.Module, name: str, extras: frozenset[str], forward: object
) -> LoadedModel:
    return LoadedModel(
        architecture=name,
        task="colorize",
        module=module,
        in_channels=3,
        out_channels=3,
        tiling="internal",
        supports_half=False,
        supports_bfloat16=False,
        extras=extras,
        forward=forward,  # type: ignore[arg-type]
        info={"working_size": WORKING_SIZE},
    )


def _resized_lab(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-resolution Lab of the input, and its L at the working size."""
    lab = rgb_to_lab(x)
    small = functional.interpolate(
        x, size=(WORKING_SIZE, WORKING_SIZE), mode="bicubic", align_corners=False, antialias=True
    )
    return lab, rgb_to_lab(small)[:, :1]


def _join(lab: torch.Tensor, ab_small: torch.Tensor) -> torch.Tensor:
    ab = functional.interpolate(ab_small, size=lab.shape[-2:], mode="bilinear", align_corners=False)
    return lab_to_rgb(torch.cat((lab[:, :1], ab), 1))


def _forward_eccv(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    lab, small_l = _resized_lab(x)
    return _join(lab, module(small_l))


def _forward_siggraph(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    lab, small_l = _resized_lab(x)
    ab, mask = hint_planes(cond.hints, small_l.shape[0])
    return _join(lab, module(small_l, ab.to(x), mask.to(x)))


def hint_planes(hints: torch.Tensor | None, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RGBA hints (N,4,H,W) -> ab hints and their mask at the working size (zeros if none)."""
    size = (WORKING_SIZE, WORKING_SIZE)
    if hints is None:
        zeros = torch.zeros(batch, 1, *size)
        return torch.cat((zeros, zeros), 1), zeros
    alpha = (hints[:, 3:4] > 0.5).to(hints.dtype)
    ab = rgb_to_lab(hints[:, :3])[:, 1:] * alpha
    area = functional.adaptive_avg_pool2d(alpha, size)
    ab_small = functional.adaptive_avg_pool2d(ab, size) / area.clamp(min=1e-6)
    mask = (area > 0).to(hints.dtype)
    return ab_small * mask, mask
