"""One command that checks a GPU for Studio, and lists what fails.

    python -m benchmarks.gpu_check                  # on the GPU (CUDA), the full check
    python -m benchmarks.gpu_check --device cpu --quick   # the same code on the CPU, small

In order: the environment (torch, CUDA, cuDNN, the card's architecture against the build's,
free memory, native bfloat16); a smoke test of the operations the engines use, device
against CPU; every built-in torch engine on the CPU and the device at 0.5 MP (agreement at
least 45 dB) and on the device at 24 MP (seconds, s/MP, peak GPU memory); every model in
../shared/models at 4 MP (chosen precision, tile, s/MP, peak, half-vs-float32 PSNR); LaMa
with random weights in float32 and bfloat16; an out-of-memory drill (the card filled to about
1.5 GB free, FFDNet and cbm3d asked for huge tiles on 24 MP must halve and finish); the
`gpu`-marked tests. Then the failures, and exit status 1 if there is any. `--quick` shrinks
every image and skips the 24-MP runs and the tests, so the check itself stays tested.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.image import Image
from studio.core.protocol import JobInputs, Kind, RunContext
from studio.engine import device as devices
from studio.engine.jobs import JobRequest, run_job
from studio.engine.neural import precision
from studio.engine.neural.executor import auto_tile, get_model, run_model
from studio.engine.neural.inference import Extras
from studio.engine.neural.model import LoadedModel
from studio.engine.registry import build_registry

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
MIN_AGREEMENT_DB = 45.0
LAMA_MIN_DB = 30.0
DRILL_FREE_BYTES = 3 * 2**29  # 1.5 GB left free on the card
SIGMA = 25 / 255


@dataclass(frozen=True)
class Sizes:
    """Megapixels of each section's images."""

    agreement: float
    large: float
    model: float
    lama_side: int


FULL = Sizes(agreement=0.5, large=24.0, model=4.0, lama_side=512)
QUICK = Sizes(agreement=0.01, large=0.0, model=0.005, lama_side=64)


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        print(f"\n## {title}")

    def row(self, *cells: object) -> None:
        print(" | ".join(str(cell) for cell in cells))

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
        return ok


def photo(megapixels: float, channels: int = 3, seed: int = 0) -> np.ndarray:
    side = max(32, int(math.sqrt(megapixels * 1e6)) // 8 * 8)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(x / 37.0) * np.cos(y / 23.0)
    noise = np.random.default_rng(seed).normal(0, SIGMA, (side, side, channels))
    return np.clip(base[..., None] + noise, 0, 1).astype(np.float32)


def psnr(reference: np.ndarray, other: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(reference, np.float64) - other) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def drain(gen: Any) -> Any:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


@contextmanager
def peak_memory(device: torch.device) -> Iterator[list[float]]:
    """Yields a list that holds the peak GPU memory in MB once the block ends (0 on the CPU)."""
    peak = [0.0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield peak
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak[0] = torch.cuda.max_memory_allocated(device) / 2**20


# --------------------------------------------------------------------------- sections


def environment(report: Report, device: torch.device) -> None:
    report.section("Environment")
    report.row("torch", torch.__version__, "CUDA", torch.version.cuda or "none")
    report.row("cuDNN", torch.backends.cudnn.version() if torch.cuda.is_available() else "none")
    if device.type != "cuda":
        report.row("device", device.type)
        return
    capability = torch.cuda.get_device_capability(device)
    built_for = torch.cuda.get_arch_list()
    supported = devices.arch_supported(capability, built_for)
    report.row("card", torch.cuda.get_device_name(device), f"sm_{capability[0]}{capability[1]}")
    report.row("build", ", ".join(built_for), "supported" if supported else "NOT SUPPORTED")
    report.check(supported, f"the card (sm_{capability[0]}{capability[1]}) is not in the build")
    free, total = torch.cuda.mem_get_info(device)
    report.row("memory", f"{free / 2**30:.1f} GB free of {total / 2**30:.1f} GB")
    report.row("native bfloat16", precision.native_bfloat16(device))
    problem = devices.gpu_problem()
    report.check(problem is None, f"device check: {problem}")


def _ops(device: torch.device) -> dict[str, Callable[[torch.device], torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 937, 919, generator=generator)
    weight = torch.rand(8, 3, 3, 3, generator=generator) - 0.5
    matrix = torch.rand(512, 512, generator=generator)
    scores = torch.rand(4096, 441, generator=generator)
    index = torch.randint(0, 1000, (8192,), generator=generator)
    values = torch.rand(8192, 64, generator=generator)
    patches = torch.rand(1, 3 * 64, 121 * 121, generator=generator)

    def on(t: torch.Tensor, target: torch.device) -> torch.Tensor:
        return t.to(target)

    return {
        "conv2d": lambda d: torch.nn.functional.conv2d(on(image, d), on(weight, d), padding=1),
        "fft 937x919": lambda d: torch.fft.irfft2(torch.fft.rfft2(on(image, d)), s=(937, 919)),
        "matmul": lambda d: on(matrix, d) @ on(matrix, d),
        "topk": lambda d: torch.topk(on(scores, d), 16, dim=1, largest=False).values,
        "index_add": lambda d: torch.zeros(1000, 64, device=d).index_add_(
            0, on(index, d), on(values, d)
        ),
        "fold": lambda d: torch.nn.functional.fold(on(patches, d), (128, 128), 8),
    }


def smoke(report: Report, device: torch.device) -> None:
    report.section("Operations: device against CPU (relative error)")
    cpu = torch.device("cpu")
    for name, op in _ops(device).items():
        try:
            expected, got = op(cpu), op(device).cpu()
            error = float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
        except Exception as err:  # every failure is reported, none stops the check
            report.row(name, "FAILED", type(err).__name__, str(err)[:100])
            report.check(False, f"operation {name}: {err}")
            continue
        report.row(name, f"{error:.1e}")
        report.check(error < 1e-3, f"operation {name} differs from the CPU by {error:.1e}")


def _engine_inputs(task: str, megapixels: float) -> JobInputs:
    style = Image(photo(megapixels / 4, seed=5))
    return JobInputs((Image(photo(megapixels)),), {"style": style} if task == "style" else {})


def _run_engine(task: str, engine: str, megapixels: float, device: str) -> tuple[Any, float]:
    request = JobRequest(task, _engine_inputs(task, megapixels), engine)
    started = time.perf_counter()
    result = drain(run_job(build_registry(), request, RunContext(device=device)))
    return result.pixels, time.perf_counter() - started


def engines(report: Report, device: torch.device, sizes: Sizes) -> None:
    report.section(f"Torch engines: CPU against {device.type} at {sizes.agreement} MP")
    report.row("engine", "agreement dB", f"{sizes.large} MP s", "s/MP", "peak MB")
    specs = [
        spec
        for task in build_registry().tasks()
        for spec in build_registry().engines(task)
        if spec.uses_device and spec.kind is Kind.BUILTIN
    ]
    for spec in specs:
        name = f"{spec.task}/{spec.id}"
        try:
            on_cpu, _ = _run_engine(spec.task, spec.id, sizes.agreement, "cpu")
            on_device, _ = _run_engine(spec.task, spec.id, sizes.agreement, device.type)
            agreement = psnr(on_cpu, on_device)
            large = ("-", "-", "-")
            if sizes.large:
                with peak_memory(device) as peak:
                    _, seconds = _run_engine(spec.task, spec.id, sizes.large, device.type)
                large = (f"{seconds:.1f}", f"{seconds / sizes.large:.2f}", f"{peak[0]:.0f}")
        except Exception as err:  # every failure is reported, none stops the check
            report.row(name, "FAILED", f"{type(err).__name__}: {str(err)[:100]}")
            report.check(False, f"engine {name}: {err}")
            continue
        report.row(name, f"{agreement:.1f}", *large)
        report.check(agreement >= MIN_AGREEMENT_DB, f"engine {name}: {agreement:.1f} dB vs CPU")


def _model_extras(model: LoadedModel) -> Extras:
    style = photo(0.02, seed=1) if "style" in model.extras else None
    return Extras(sigma=SIGMA, style=style)


def _half(model: LoadedModel, device: torch.device) -> str:
    return "fp16" if model.supports_half and device.type == "cuda" else "bf16"


def models(report: Report, device: torch.device, sizes: Sizes, folder: Path) -> None:
    report.section(f"Models in {folder} at {sizes.model} MP on {device.type}")
    report.row("model", "precision", "tile", "s/MP", "peak MB", "half vs fp32 dB")
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".pth", ".model", ".safetensors"))
    ctx = RunContext(device=device.type)
    for path in files:
        name = str(path.relative_to(folder))
        try:
            model = get_model(path, ctx)
            channels = model.in_channels if model.in_channels in (1, 3) else 3
            pixels = photo(sizes.model, channels)
            extras = _model_extras(model)
            with peak_memory(device) as peak:
                started = time.perf_counter()
                auto = drain(run_model(model, pixels, ctx, extras, output_bits=8))
                seconds = time.perf_counter() - started
            chosen, _ = precision.choose(model, device, "auto", 8)
            tile = auto_tile(model, *pixels.shape[:2], device, 2 if chosen else 4)
            fp32 = drain(
                run_model(model, pixels, RunContext(device.type, precision="fp32"), extras)
            )
            half_ctx = RunContext(device.type, precision=_half(model, device))
            half = drain(run_model(model, pixels, half_ctx, extras))
        except Exception as err:  # every failure is reported, none stops the check
            report.row(name, "FAILED", f"{type(err).__name__}: {str(err)[:100]}")
            report.check(False, f"model {name}: {err}")
            continue
        report.row(
            name,
            str(chosen).replace("torch.", "") if chosen else "float32",
            tile or "whole",
            f"{seconds / (pixels.shape[0] * pixels.shape[1] / 1e6):.2f}",
            f"{peak[0]:.0f}",
            f"{psnr(fp32, half):.1f}",
        )
        report.check(bool(np.isfinite(auto).all()), f"model {name}: NaN or Inf in its result")


def lama(report: Report, device: torch.device, sizes: Sizes) -> None:
    from spandrel.architectures.LaMa import LaMa

    from studio.engine.neural import spandrel_bridge

    report.section(f"LaMa, random weights, {sizes.lama_side} px on {device.type}")
    torch.manual_seed(0)
    model = spandrel_bridge.load(LaMa(in_nc=4).state_dict())
    model.module.to(device)
    side = sizes.lama_side
    mask = np.zeros((side, side), np.float32)
    mask[side // 4 : side // 2, side // 3 : 2 * side // 3] = 1
    results = {}
    try:
        for setting in ("fp32", "bf16"):
            ctx = RunContext(device.type, precision=setting)
            results[setting] = drain(
                run_model(model, photo(side * side / 1e6), ctx, Extras(mask=mask))
            )
    except Exception as err:  # every failure is reported, none stops the check
        report.row("FAILED", f"{type(err).__name__}: {str(err)[:100]}")
        report.check(False, f"LaMa: {err}")
        return
    agreement = psnr(results["fp32"], results["bf16"])
    report.row("bf16 vs fp32 dB", f"{agreement:.1f}")
    report.check(agreement >= LAMA_MIN_DB, f"LaMa bf16 agrees with fp32 to only {agreement:.1f} dB")


def out_of_memory_drill(report: Report, device: torch.device, sizes: Sizes) -> None:
    report.section("Out-of-memory drill (card filled to 1.5 GB free, huge tiles on 24 MP)")
    if device.type != "cuda" or not sizes.large:
        report.row("skipped: needs a CUDA GPU and the full check")
        return
    free, _ = torch.cuda.mem_get_info(device)
    ballast = torch.empty(max(0, free - DRILL_FREE_BYTES), dtype=torch.uint8, device=device)
    try:
        ffdnet = SHARED_MODELS / "denoising" / "ipol_ffdnet_net_rgb.pth"
        runs: list[tuple[str, str | None, Path | None]] = [("cbm3d", "cbm3d", None)]
        if ffdnet.is_file():
            runs.append(("FFDNet", "model", ffdnet))
        for name, engine, path in runs:
            logs: list[str] = []
            ctx = RunContext(device="cuda", tile=8192, model_path=path, log=logs.append)
            request = JobRequest("denoise", JobInputs((Image(photo(sizes.large)),)), engine)
            try:
                result = drain(run_job(build_registry(), request, ctx))
                finished = bool(np.isfinite(result.pixels).all())
            except Exception as err:  # every failure is reported, none stops the check
                finished, logs = False, [*logs, f"{type(err).__name__}: {err}"]
            halved = any("retrying with" in line for line in logs)
            report.row(name, "finished" if finished else "FAILED", "halved" if halved else "-")
            report.check(finished and halved, f"OOM drill {name}: {logs[-1:] or 'no halving'}")
    finally:
        del ballast
        torch.cuda.empty_cache()


def gpu_tests(report: Report, quick: bool) -> None:
    report.section("pytest -m gpu")
    if quick:
        report.row("skipped (--quick)")
        return
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu"], check=False)
    report.row("exit status", done.returncode)
    report.check(done.returncode in (0, 5), f"pytest -m gpu exited {done.returncode}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--quick", action="store_true", help="small images, no 24 MP, no tests")
    parser.add_argument("--models", type=Path, default=SHARED_MODELS, help="folder of models")
    args = parser.parse_args(argv)
    report = Report()
    sizes = QUICK if args.quick else FULL
    if args.device == "cuda" and not torch.cuda.is_available():
        print("No CUDA GPU: run with --device cpu to check the same code on the CPU")
        return 1
    device = torch.device(args.device)
    environment(report, device)
    smoke(report, device)
    engines(report, device, sizes)
    if args.models.is_dir():
        models(report, device, sizes, args.models)
    lama(report, device, sizes)
    out_of_memory_drill(report, device, sizes)
    gpu_tests(report, args.quick)
    print("\n## Failures")
    for failure in report.failures:
        print(f"- {failure}")
    print("none" if not report.failures else f"{len(report.failures)} failure(s)")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
