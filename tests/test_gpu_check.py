"""The GPU check runs on the CPU in the suite, so it never rots."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from benchmarks import gpu_check


@pytest.mark.slow
def test_quick_check_on_the_cpu_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--device", "cpu", "--quick"]) == 0
    out = capsys.readouterr().out
    for section in ("Environment", "Operations", "Torch engines", "LaMa", "Failures"):
        assert f"## {section}" in out
    assert "denoise/cbm3d | inf" in out  # the same device twice agrees exactly


def test_a_disagreeing_operation_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def unstable(device: torch.device) -> dict[str, Callable[[torch.device], torch.Tensor]]:
        return {"noise": lambda d: torch.rand(64, device=d)}

    monkeypatch.setattr(gpu_check, "_ops", unstable)
    report = gpu_check.Report()
    gpu_check.smoke(report, torch.device("cpu"))
    assert report.failures and "operation noise" in report.failures[0]


def test_no_gpu_means_exit_1_for_the_full_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 1
