"""Tiny randomly initialised networks in their authors' published key layouts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from studio.engine.neural.arches.adain import AdaIN
from studio.engine.neural.arches.cyclegan import CycleGANGenerator
from studio.engine.neural.arches.dncnn_residual import ResidualDnCNN
from studio.engine.neural.arches.fast_style import TransformerMobileNet, TransformerNet
from studio.engine.neural.arches.ffdnet import IpolFFDNet, KairFFDNet
from studio.engine.neural.arches.unet_colorizer import UNetColorizer
from studio.engine.neural.arches.zero_dce import ZeroDCE
from studio.engine.neural.arches.zhang_colorizers import ECCVGenerator, SIGGRAPHGenerator

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Tiny:
    """A tiny network: its state dict builder, what it must be detected as, a key it must have."""

    build: Callable[[], State]
    architecture: str
    task: str
    published_key: str


def _randomised(build: Callable[[], torch.nn.Module]) -> State:
    """The state of the module `build` makes, seeded first so its weights are the same every
    run, with BatchNorm/InstanceNorm statistics made non-trivial."""
    torch.manual_seed(0)
    module = build()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    for key, value in state.items():
        if key.endswith("running_var"):
            state[key] = torch.rand_like(value) + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn_like(value) * 0.1
    return state


def _prefixed(state: State, prefix: str) -> State:
    return {prefix + k: v for k, v in state.items()}


def _with_stale_instance_norm_stats(state: State) -> State:
    """Old pytorch/examples checkpoints carry InstanceNorm running stats the loader must drop."""
    extra = {"in1.running_mean": torch.zeros(state["in1.weight"].shape)}
    return {**state, **extra}


def _spandrel_dncnn() -> State:
    from spandrel.architectures.DnCNN import DnCNN

    return _randomised(lambda: DnCNN(in_nc=1, out_nc=1, nc=8, nb=8, act_mode="R"))


def _spandrel_drunet() -> State:
    from spandrel.architectures.DRUNet import DRUNet

    return _randomised(lambda: DRUNet(in_nc=4, out_nc=3, nc=[8, 16, 32, 64], nb=2))


def _spandrel_nafnet() -> State:
    from spandrel.architectures.NAFNet import NAFNet

    return _randomised(
        lambda: NAFNet(
            img_channel=3, width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]
        )
    )


def _spandrel_scunet() -> State:
    from spandrel.architectures.SCUNet import SCUNet

    return _randomised(lambda: SCUNet(in_nc=3, config=[1, 1, 1, 1, 1, 1, 1], dim=64))


def _spandrel_lama() -> State:
    from spandrel.architectures.LaMa import LaMa

    return _randomised(LaMa)


def _spandrel_compact_sr() -> State:
    from spandrel.architectures.Compact import Compact

    return _randomised(
        lambda: Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    )


def _adain_bundle() -> State:
    return {
        **_prefixed(_randomised(lambda: AdaIN(base=4).decoder), "decoder."),
        **_prefixed(_randomised(lambda: AdaIN(base=4).vgg), "vgg."),
    }


TINY: dict[str, Tiny] = {
    "ffdnet_kair": Tiny(
        lambda: _randomised(lambda: KairFFDNet(3, 8, 4)), "FFDNet", "denoise", "model.6.bias"
    ),
    "ffdnet_ipol": Tiny(
        lambda: _prefixed(_randomised(lambda: IpolFFDNet(1, 8, 4)), "module."),
        "FFDNet",
        "denoise",
        "module.intermediate_dncnn.itermediate_dncnn.3.running_var",
    ),
    "dncnn_saoyan": Tiny(
        lambda: _prefixed(_randomised(lambda: ResidualDnCNN(1, 8, 5)), "module."),
        "DnCNN",
        "denoise",
        "module.dncnn.3.running_mean",
    ),
    "transformer_net": Tiny(
        lambda: _with_stale_instance_norm_stats(_randomised(lambda: TransformerNet(width=4))),
        "TransformerNet",
        "style",
        "res5.conv2.conv2d.weight",
    ),
    "transformer_mobilenet": Tiny(
        lambda: _randomised(lambda: TransformerMobileNet(width=4)),
        "TransformerMobileNet",
        "style",
        "upconv2.conv1.conv3.weight",
    ),
    "adain": Tiny(_adain_bundle, "AdaIN", "style", "decoder.28.weight"),
    "cyclegan": Tiny(
        lambda: _randomised(lambda: CycleGANGenerator(3, 3, 4, 3)),
        "CycleGAN",
        "style",
        "model.10.conv_block.5.weight",
    ),
    "eccv16": Tiny(
        lambda: _randomised(lambda: ECCVGenerator(4, 16)), "ECCV16", "colorize", "model8.6.weight"
    ),
    "siggraph17": Tiny(
        lambda: _randomised(lambda: SIGGRAPHGenerator(4, 8)),
        "SIGGRAPH17",
        "colorize",
        "model1short10.0.weight",
    ),
    "zero_dce": Tiny(lambda: _randomised(lambda: ZeroDCE(4)), "Zero-DCE", "hdr", "e_conv7.bias"),
    "unet_colorizer": Tiny(
        lambda: _randomised(lambda: UNetColorizer(1, 4, 3)),
        "UNetColorizer",
        "colorize",
        "dec2.1.running_var",
    ),
    "spandrel_dncnn": Tiny(_spandrel_dncnn, "DnCNN", "denoise", "model.0.bias"),
    "spandrel_drunet": Tiny(_spandrel_drunet, "DRUNet", "denoise", "m_head.weight"),
    "spandrel_nafnet": Tiny(_spandrel_nafnet, "NAFNet", "deblur", "intro.weight"),
    "spandrel_scunet": Tiny(_spandrel_scunet, "SCUNet", "denoise", "m_head.0.weight"),
}

SLOW_TINY: dict[str, Tiny] = {
    "spandrel_lama": Tiny(_spandrel_lama, "LaMa", "inpaint", "model.model.1.ffc.convl2l.weight"),
}


def save(state: State, folder: Path, name: str, fmt: str) -> Path:
    """Write `state` as `name.pth` (torch.save) or `name.safetensors`."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "safetensors":
        path = folder / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        path = folder / f"{name}.pth"
        torch.save(state, path)
    return path


def compact_sr() -> State:
    return _spandrel_compact_sr()
