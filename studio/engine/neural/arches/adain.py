"""AdaIN arbitrary style transfer (Huang & Belongie 2017), naoto0804/pytorch-AdaIN layout.

The decoder file (`decoder.pth`: sequential indices 1, 5, 8, ... ending in a 64->3 conv)
needs the normalised VGG-19 encoder (`vgg_normalised.pth`, indices 0, 2, 5, ...) of which
the layers up to relu4_1 are used. They load as one model from either a bundle with keys
`decoder.*` and `vgg.*`, or a decoder file with `vgg_normalised.pth` beside it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from studio.core.errors import ModelError
from studio.engine.neural.arches._common import load_strict, seq_indices, shape
from studio.engine.neural.model import Conditioning, LoadedModel
from studio.engine.neural.safeload import StateDict, read_state_dict

VGG_NAMES = ("vgg_normalised.pth", "vgg_normalized.pth", "vgg_normalised.safetensors")
_ENCODER_LAYERS = 31  # the authors' test.py: children()[:31], i.e. up to relu4_1


def _conv(in_ch: int, out_ch: int) -> list[nn.Module]:
    return [nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3), nn.ReLU()]


def build_decoder(b: int = 64) -> nn.Sequential:
    """The authors' decoder; `b` is the base width (64 in the published files)."""
    up = nn.Upsample(scale_factor=2, mode="nearest")
    layers = [
        *_conv(8 * b, 4 * b), up,
        *_conv(4 * b, 4 * b), *_conv(4 * b, 4 * b), *_conv(4 * b, 4 * b), *_conv(4 * b, 2 * b), up,
        *_conv(2 * b, 2 * b), *_conv(2 * b, b), up,
        *_conv(b, b), nn.ReflectionPad2d(1), nn.Conv2d(b, 3, 3),
    ]  # fmt: skip
    return nn.Sequential(*layers)


def build_encoder(b: int = 64) -> nn.Sequential:
    """The normalised VGG-19 up to relu4_1; `b` is the base width (64 for VGG)."""
    pool = nn.MaxPool2d(2, 2, 0, ceil_mode=True)
    layers = [
        nn.Conv2d(3, 3, 1),
        *_conv(3, b), *_conv(b, b), pool,
        *_conv(b, 2 * b), *_conv(2 * b, 2 * b), pool,
        *_conv(2 * b, 4 * b), *_conv(4 * b, 4 * b),
        *_conv(4 * b, 4 * b), *_conv(4 * b, 4 * b), pool,
        *_conv(4 * b, 8 * b),
    ]  # fmt: skip
    return nn.Sequential(*layers)


class AdaIN(nn.Module):
    def __init__(self, base: int = 64) -> None:
        super().__init__()
        self.vgg = build_encoder(base)
        self.decoder = build_decoder(base)

    def forward(
        self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0
    ) -> torch.Tensor:
        content_f = self.vgg(content)
        style_f = self.vgg(style)
        feat = adaptive_instance_normalization(content_f, style_f)
        feat = feat * alpha + content_f * (1 - alpha)
        out: torch.Tensor = self.decoder(feat)
        return out


def _mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    return flat.mean(dim=2).view(n, c, 1, 1), (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)


def adaptive_instance_normalization(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    s_mean, s_std = _mean_std(style)
    c_mean, c_std = _mean_std(content)
    return (content - c_mean) / c_std * s_std + s_mean


def _is_decoder(state: StateDict) -> bool:
    convs = seq_indices(state, "")
    if not convs or convs[0] != 1 or len(convs) != 9:
        return False
    return shape(state, f"{convs[-1]}.weight")[0] == 3 and shape(state, "1.weight")[1] % 8 == 0


def _is_encoder(state: StateDict) -> bool:
    return "0.weight" in state and shape(state, "0.weight") == (3, 3, 1, 1)


def _prefixed(state: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def detect(state: StateDict, path: Path | None = None) -> LoadedModel | None:
    if "decoder.1.weight" in state and "vgg.0.weight" in state:
        decoder, encoder = _prefixed(state, "decoder."), _prefixed(state, "vgg.")
    elif _is_decoder(state):
        decoder, encoder = state, _sibling_encoder(path)
    elif _is_encoder(state):
        raise ModelError(
            "This is AdaIN's VGG encoder (vgg_normalised.pth): import the decoder file "
            "and keep the encoder beside it"
        )
    else:
        return None
    encoder = {k: v for k, v in encoder.items() if int(k.split(".")[0]) < _ENCODER_LAYERS}
    module = AdaIN(shape(decoder, "1.weight")[1] // 8)
    load_strict(module.decoder, decoder, "AdaIN decoder")
    load_strict(module.vgg, encoder, "AdaIN VGG encoder")
    return LoadedModel(
        architecture="AdaIN",
        task="style",
        module=module.eval(),
        in_channels=3,
        out_channels=3,
        tiling="discouraged",
        supports_half=False,
        supports_bfloat16=True,
        extras=frozenset({"style"}),
        forward=_forward,
    )


def _sibling_encoder(path: Path | None) -> StateDict:
    folder = path.parent if path else None
    for name in VGG_NAMES:
        if folder is not None and (folder / name).is_file():
            return read_state_dict(folder / name)
    raise ModelError(
        "This AdaIN decoder needs the VGG encoder: put vgg_normalised.pth beside it "
        "(both come from the pytorch-AdaIN release)"
    )


def _forward(module: nn.Module, x: torch.Tensor, cond: Conditioning) -> torch.Tensor:
    if cond.style is None:
        raise ModelError("AdaIN style transfer needs a style image")
    out: torch.Tensor = module(x, cond.style.to(x), cond.alpha)
    out = out[..., : x.shape[-2], : x.shape[-1]]
    if out.shape[-2:] != x.shape[-2:]:
        out = functional.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return out.clamp(0.0, 1.0)
