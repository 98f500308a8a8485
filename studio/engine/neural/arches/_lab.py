"""sRGB <-> CIE Lab (D65) on NCHW tensors, as skimage's rgb2lab/lab2rgb compute it."""

from __future__ import annotations

import torch

_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_EPS = 0.008856
_KAPPA = 7.787


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) sRGB in [0,1] -> Lab with L in [0,100]."""
    rgb = rgb.clamp(0.0, 1.0)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = _RGB_TO_XYZ.to(rgb)
    xyz = torch.einsum("ij,njhw->nihw", matrix, linear) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > _EPS, xyz.clamp(min=1e-12) ** (1 / 3), _KAPPA * xyz + 16 / 116)
    lightness = 116 * f[:, 1:2] - 16
    a = 500 * (f[:, 0:1] - f[:, 1:2])
    b = 200 * (f[:, 1:2] - f[:, 2:3])
    return torch.cat((lightness, a, b), 1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) Lab -> sRGB clipped to [0,1]."""
    fy = (lab[:, 0:1] + 16) / 116
    fx = fy + lab[:, 1:2] / 500
    fz = (fy - lab[:, 2:3] / 200).clamp(min=0.0)
    f = torch.cat((fx, fy, fz), 1)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / _KAPPA) * _WHITE.to(lab).view(
        1, 3, 1, 1
    )
    matrix = torch.linalg.inv(_RGB_TO_XYZ).to(lab)
    linear = torch.einsum("ij,njhw->nihw", matrix, xyz).clamp(min=0.0)
    rgb = torch.where(
        linear > 0.0031308, 1.055 * linear.clamp(min=1e-12) ** (1 / 2.4) - 0.055, linear * 12.92
    )
    return rgb.clamp(0.0, 1.0)
