"""Neural executor benchmark: its overhead over the bare model, and seconds per megapixel.

    python -m benchmarks.neural [--device cpu|cuda] [--megapixels 0.25] [--repeats 3]
    python -m benchmarks.neural --tile-sweep   # seconds per tile side, 4 MP, on the CPU

Overhead: the executor (`run_model`, no tiling needed) against calling the model's own
forward on the same image, with only the numpy<->torch conversion around it; the median of
interleaved repeats. Speed: seconds per megapixel of every model in ../shared/models (one
cold run each). Prints a table and writes bench-results/neural.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studio.core.protocol import RunContext
from studio.engine.device import describe_device
from studio.engine.neural.executor import Extras, get_model, run_model
from studio.engine.neural.model import Conditioning, LoadedModel

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
RESULTS = Path("bench-results")
OVERHEAD_MODELS = (
    "denoising/kair_dncnn_25.pth",
    "denoising/ipol_ffdnet_net_rgb.pth",
    "style_transfer/tnet_nc16_candy.model",
    "hdr/zero_dce_Epoch99.pth",
)
SIGMA = 25 / 255
SWEEP_TILES = (0, 512, 384, 256)  # 0: the whole image at once


def test_image(megapixels: float, channels: int, seed: int = 0) -> np.ndarray:
    side = int((megapixels * 1e6) ** 0.5) // 8 * 8
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(x / 37.0) * np.cos(y / 23.0)
    noisy = base[..., None] + rng.normal(0, SIGMA, (side, side, channels)).astype(np.float32)
    return np.clip(noisy, 0, 1).astype(np.float32)


def _extras(model: LoadedModel) -> Extras:
    style = test_image(0.05, 3, seed=1) if "style" in model.extras else None
    return Extras(sigma=SIGMA, style=style)


def _drain(gen: Any) -> np.ndarray:
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            out: np.ndarray = stop.value
            return out


def executor_call(model: LoadedModel, pixels: np.ndarray, ctx: RunContext) -> Callable[[], Any]:
    return lambda: _drain(run_model(model, pixels, ctx, _extras(model)))


def bare_call(model: LoadedModel, pixels: np.ndarray, device: torch.device) -> Callable[[], Any]:
    extras = _extras(model)
    cond = Conditioning(sigma=extras.sigma)
    if extras.style is not None:
        cond.style = torch.from_numpy(extras.style).permute(2, 0, 1)[None].to(device)

    def call() -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(device).permute(2, 0, 1)[None]
            y = model.forward(model.module, x, cond)
            return y[0].permute(1, 2, 0).float().cpu().numpy()

    return call


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def overhead(
    model: LoadedModel, ctx: RunContext, megapixels: float, repeats: int
) -> dict[str, float]:
    device = next(model.module.parameters()).device
    pixels = test_image(megapixels, model.in_channels)
    bare, executor = bare_call(model, pixels, device), executor_call(model, pixels, ctx)
    bare(), executor()  # warm up
    bare_times, exec_times = [], []
    for _ in range(repeats):
        bare_times.append(_time(bare))
        exec_times.append(_time(executor))
    b, e = statistics.median(bare_times), statistics.median(exec_times)
    return {"bare_s": b, "executor_s": e, "ratio": e / b}


def seconds_per_megapixel(model: LoadedModel, ctx: RunContext, megapixels: float) -> float:
    pixels = test_image(megapixels, 3)
    return _time(executor_call(model, pixels, ctx)) / (pixels.shape[0] * pixels.shape[1] / 1e6)


def tile_sweep(model: LoadedModel, megapixels: float = 4.0) -> dict[str, float]:
    """Seconds per megapixel on the CPU for each tile side in SWEEP_TILES."""
    pixels = test_image(megapixels, model.in_channels)
    megapixels = pixels.shape[0] * pixels.shape[1] / 1e6
    _time(executor_call(model, pixels[:256, :256], RunContext(device="cpu")))  # warm up
    row = {}
    for side in SWEEP_TILES:
        ctx = RunContext(device="cpu", tile=side or pixels.shape[0])
        seconds = _time(executor_call(model, pixels, ctx))
        row[f"{side or 'whole'}_s_per_mp"] = round(seconds / megapixels, 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--megapixels", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--overhead-only", action="store_true", help="measure only the executor's overhead"
    )
    parser.add_argument(
        "--tile-sweep", action="store_true", help="seconds per megapixel for each CPU tile side"
    )
    args = parser.parse_args()
    if not SHARED_MODELS.is_dir():
        raise SystemExit(f"{SHARED_MODELS} is absent: nothing to benchmark")
    ctx = RunContext(device=args.device)
    torch.set_grad_enabled(False)
    rows: list[dict[str, Any]] = []
    paths = sorted(p for p in SHARED_MODELS.rglob("*") if p.suffix in (".pth", ".model"))
    if args.overhead_only or args.tile_sweep:
        paths = [SHARED_MODELS / name for name in OVERHEAD_MODELS]
    if args.tile_sweep:
        for path in paths:
            row = {"model": path.name, **tile_sweep(get_model(path, ctx))}
            print(json.dumps(row), flush=True)
        return
    for path in paths:
        name = str(path.relative_to(SHARED_MODELS))
        model = get_model(path, ctx)
        row: dict[str, Any] = {
            "model": name,
            "architecture": model.architecture,
            "task": model.task,
        }
        if not args.overhead_only:
            row["s_per_mp"] = seconds_per_megapixel(model, ctx, args.megapixels)
        if name in OVERHEAD_MODELS:
            row.update(overhead(model, ctx, args.megapixels, args.repeats))
        rows.append(row)
        _print_row(row)
        ctx.cache.clear()
    report = {"device": describe_device(args.device), "megapixels": args.megapixels, "models": rows}
    RESULTS.mkdir(exist_ok=True)
    suffix = ("" if args.device == "cpu" else f"-{args.device}") + (
        "-overhead" if args.overhead_only else ""
    )
    out = RESULTS / f"neural{suffix}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{report['device']}; wrote {out}")


def _print_row(row: dict[str, Any]) -> None:
    if not hasattr(_print_row, "header"):
        print(
            f"{'model':48} {'architecture':21} {'s/MP':>7} {'bare s':>8} {'exec s':>8} {'ratio':>6}"
        )
        _print_row.header = True  # type: ignore[attr-defined]
    ratio = (
        f"{row['bare_s']:8.3f} {row['executor_s']:8.3f} {row['ratio']:6.3f}"
        if "ratio" in row
        else ""
    )
    speed = f"{row['s_per_mp']:7.2f}" if "s_per_mp" in row else f"{'-':>7}"
    print(f"{row['model']:48} {row['architecture']:21} {speed} {ratio}", flush=True)


if __name__ == "__main__":
    main()
