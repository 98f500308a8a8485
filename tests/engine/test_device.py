"""Device choice: a GPU this PyTorch build cannot drive, or one that failed, is not used."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from studio.core.errors import UsageError
from studio.engine import device
from studio.ui.warmup import describe_compute_device

BUILD = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


@pytest.mark.parametrize(
    ("capability", "built_for", "supported"),
    [
        ((6, 1), BUILD, False),  # GTX 1080
        ((7, 0), BUILD, False),  # V100
        ((7, 5), BUILD, True),
        ((8, 9), BUILD, True),  # sm_86 kernels run on sm_89
        ((9, 0), ["sm_80", "sm_86"], False),
        ((9, 0), ["sm_80", "compute_80"], True),  # PTX is compiled for newer cards
        ((6, 1), ["sm_50", "sm_60", "sm_70"], True),
        ((9, 0), ["sm_90a"], True),
    ],
)
def test_architecture_check(
    capability: tuple[int, int], built_for: list[str], supported: bool
) -> None:
    assert device.arch_supported(capability, built_for) is supported


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A CUDA card that reports itself available; tests choose its architecture."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=None: "NVIDIA GeForce GTX 1080")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(BUILD))
    monkeypatch.setattr(device, "_set_aside", [])
    device._check_cuda.cache_clear()
    yield monkeypatch
    device._check_cuda.cache_clear()


def test_an_old_card_sends_auto_to_the_cpu_and_says_why(fake_cuda: pytest.MonkeyPatch) -> None:
    fake_cuda.setattr(torch.cuda, "get_device_capability", lambda index=None: (6, 1))
    assert device.resolve_device("auto") == torch.device("cpu")
    problem = device.gpu_problem()
    assert problem is not None and "sm_61" in problem and "GTX 1080" in problem
    with pytest.raises(UsageError, match="sm_61"):
        device.resolve_device("cuda")
    description = describe_compute_device("auto")
    assert (
        description.startswith("CPU") and "GPU not used" in description and "sm_61" in description
    )


def test_a_card_failing_the_test_computation_is_not_used(fake_cuda: pytest.MonkeyPatch) -> None:
    fake_cuda.setattr(torch.cuda, "get_device_capability", lambda index=None: (8, 6))

    def no_kernel(dev: torch.device) -> None:
        raise RuntimeError("CUDA error: no kernel image is available for execution on the device")

    fake_cuda.setattr(device, "_tiny_computation", no_kernel)
    assert device.resolve_device("auto") == torch.device("cpu")
    assert "no kernel image" in (device.gpu_problem() or "")


def test_a_working_card_is_chosen(fake_cuda: pytest.MonkeyPatch) -> None:
    fake_cuda.setattr(torch.cuda, "get_device_capability", lambda index=None: (8, 6))
    fake_cuda.setattr(device, "_tiny_computation", lambda dev: None)
    assert device.resolve_device("auto") == torch.device("cuda")
    assert device.gpu_problem() is None


def test_a_gpu_set_aside_is_not_used_again(fake_cuda: pytest.MonkeyPatch) -> None:
    fake_cuda.setattr(torch.cuda, "get_device_capability", lambda index=None: (8, 6))
    fake_cuda.setattr(device, "_tiny_computation", lambda dev: None)
    device.set_gpu_aside("it failed with 'illegal memory access'")
    assert device.resolve_device("auto") == torch.device("cpu")
    assert "illegal memory access" in (device.gpu_problem() or "")
