"""Speed and memory of every task's default engine, batch throughput and a 100-megapixel run.

    python -m benchmarks.perf [--sizes 1,12,24] [--tasks denoise,deblur:wiener] [--skip-huge]
                              [--huge-tasks all|denoise,denoise:nlm,hdr] [--huge-megapixels 100]
                              [--neural] [--batch-engines cbm3d,nlm] [--batch-megapixels 0.5]
                              [--upscale 2,4] [--upscale-engines detail,lanczos,model]

`--tasks` takes task names (their default engine) or task:engine. The deblur photo is a real
one shaken by a SHAKE-px camera path, so the default blind engine estimates a kernel and
removes it.
Each measurement runs in a fresh subprocess so its peak resident memory is its own. Prints a
table and writes bench-results/perf.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, RunContext
from tests.helpers import finish

TASKS = ("denoise", "deblur", "inpaint", "hdr", "colorize", "style")
RESULTS = Path("bench-results")
HUGE_LIMIT = 4.0  # peak host memory of a 100-MP job, in units of its float32 image
HUGE_UPSCALE = 2.0  # the upscale of the big-photo run
UPSCALE_BOUND = 2.0  # peak host memory of an upscale, in units of its 16-bit output
SHAKE = 31  # px: the camera shake blurred into the deblur task's photo
SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models"
NEURAL = {  # one checkpoint per architecture in ../shared/models, and its task
    "denoising/kair_ffdnet_color.pth": "denoise",
    "denoising/dncnn_color_blind.pth": "denoise",
    "style_transfer/tnet_nc16_candy.model": "style",
    "style_transfer/mobilenetv2_tnet_candy.pth": "style",
    "hdr/zero_dce_Epoch99.pth": "hdr",
    "colorization/okidli1_cifar10_unet_colorizer.pth": "colorize",
}


def photo(megapixels: float, seed: int = 0) -> np.ndarray:
    """A photo-like float32 RGB image: gradients, edges, texture and sigma-10 noise.

    Built in bands of rows so that making a 100-megapixel image costs little beyond itself.
    """
    rng = np.random.default_rng(seed)
    width = round((megapixels * 1e6 * 1.5) ** 0.5)
    height = round(megapixels * 1e6 / width)
    out = np.empty((height, width, 3), dtype=np.float32)
    x = np.arange(width, dtype=np.float32)[None, :]
    for top in range(0, height, 256):
        y = np.arange(top, min(top + 256, height), dtype=np.float32)[:, None]
        base = 0.5 + 0.25 * np.sin(x / 97.0) * np.cos(y / 71.0)
        stripes = 0.15 * (np.sin((x + 2 * y) / 5.0) > 0)
        band = np.stack([base + stripes, base * 0.8 + 0.1, 0.9 - base], axis=2)
        band += rng.normal(0.0, 10 / 255, band.shape).astype(np.float32)
        out[top : top + len(y)] = np.clip(band, 0.0, 1.0)
    return out


def job_inputs(task: str, pixels: np.ndarray, one_photo: bool = False) -> JobInputs:
    """Inputs a photographer would give each task, built around `pixels`; `one_photo` for an
    hdr engine that takes one photo, not brackets (tone mapping, models)."""
    height, width = pixels.shape[:2]
    image = Image(pixels, ImageMeta(bit_depth=8))
    if task == "hdr" and not one_photo:
        brackets = tuple(
            Image(np.clip(pixels * gain, 0, 1).astype(np.float32), ImageMeta(exposure_time=t))
            for gain, t in ((0.25, 1 / 200), (1.0, 1 / 50), (4.0, 1 / 12.5))
        )
        return JobInputs(brackets)
    if task == "inpaint":
        mask = np.zeros((height, width), dtype=np.float32)
        mask[height // 3 : height // 3 + height // 8, width // 3 : width // 3 + width // 8] = 1
        return JobInputs((image,), {"mask": mask})
    if task == "colorize":
        grey = pixels.mean(axis=2, keepdims=True).astype(np.float32)
        hints = np.zeros((height, width, 4), dtype=np.float32)
        picks = np.random.default_rng(1).random((height, width)) < 0.01
        hints[picks, :3] = pixels[picks]
        hints[picks, 3] = 1.0
        return JobInputs((Image(np.repeat(grey, 3, axis=2)),), {"hints": hints})
    if task == "style":
        style = Image(photo(0.25, seed=7)[:, ::-1].copy())
        return JobInputs((image,), {"style": style})
    if task == "deblur":
        return JobInputs((Image(shaken(pixels), ImageMeta(bit_depth=8)),))
    return JobInputs((image,))


def shaken(pixels: np.ndarray) -> np.ndarray:
    """A real photograph (scikit-image's astronaut, mirror-tiled to the size of `pixels`)
    blurred by a SHAKE-px camera-shake path plus 1 % noise, so that the default blind deblur
    finds a kernel and deconvolves, as on a real shaken photo (the synthetic `photo` is no
    natural image: its blur estimate is refused)."""
    import cv2
    from skimage import data as skdata

    from benchmarks.quality.deblur_blind import trajectory_kernel

    height, width = pixels.shape[:2]
    astronaut = np.asarray(skdata.astronaut(), np.float32) / 255
    grow = ((0, max(0, height - astronaut.shape[0])), (0, max(0, width - astronaut.shape[1])))
    tiled = np.pad(astronaut, (*grow, (0, 0)), mode="symmetric")
    sharp = np.ascontiguousarray(tiled[:height, :width])
    rng = np.random.default_rng(0)
    kernel = trajectory_kernel(SHAKE, rng).astype(np.float32)
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])  # filter2D correlates
    out = np.asarray(cv2.filter2D(sharp, -1, flipped, borderType=cv2.BORDER_REFLECT))
    for top in range(0, height, 256):  # noise by bands: little beyond the image itself
        band = out[top : top + 256]
        band += rng.normal(0.0, 0.01, band.shape).astype(np.float32)
    return out


def peak_rss_mb() -> float:
    """Peak resident memory since the process started, or since `reset_peak` on Linux."""
    status = _proc_status()
    if "VmHWM" in status:
        return status["VmHWM"]
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    return _proc_status().get("VmRSS", peak_rss_mb())


def reset_peak() -> None:
    """Start the peak over from the current resident memory (Linux), so building the inputs
    does not count as the job's peak."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _proc_status() -> dict[str, float]:
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split() for line in lines if line.startswith(("VmHWM:", "VmRSS:")))
    return {f[0].rstrip(":"): int(f[1]) / 1024 for f in fields}


def _inputs_mb(inputs: JobInputs) -> float:
    arrays = [image.pixels for image in inputs.images]
    arrays += [a for a in inputs.extras.values() if isinstance(a, np.ndarray)]
    arrays += [a.pixels for a in inputs.extras.values() if isinstance(a, Image)]
    return sum(a.nbytes for a in arrays) / 2**20


def child(
    task: str, engine: str | None, megapixels: float, model: str | None, scale: float | None
) -> dict[str, Any]:
    """Run one job in this process and measure it (an upscale also writes its 16-bit TIFF).

    Peak memory counts from just before the job, its inputs already built; `job_over_image`
    leaves out the interpreter, torch and the engine registry (`interpreter_mb`)."""
    from studio.core.imageio import write_image
    from studio.engine.jobs import JobRequest, run_job
    from studio.engine.registry import build_registry

    registry = build_registry()
    spec = registry.get(task, engine)
    import torch  # noqa: F401  (imported before timing, as the window does after it opens)

    interpreter_mb = rss_mb()
    inputs = job_inputs(task, photo(megapixels), one_photo=not spec.merges_images)
    ctx = RunContext(device="auto", model_path=Path(model) if model else None)
    params = {"scale": scale} if scale else {}
    reset_peak()
    start = time.perf_counter()
    job = run_job(registry, JobRequest(task, inputs, engine=spec.id, params=params), ctx)
    result = finish(job)
    if scale:
        with tempfile.TemporaryDirectory() as folder:
            write_image(result, Path(folder, "out.tif"), bit_depth=16)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    image_mb = inputs.image.pixels.nbytes / 2**20
    samples = result.height * result.width * result.channels
    output_mb = samples * 4 / 2**20  # as float32
    row = {
        "task": task,
        "engine": Path(model).name if model else spec.id,
        "megapixels": round(inputs.image.megapixels, 2),
        "seconds": round(seconds, 2),
        "sec_per_mp": round(seconds / inputs.image.megapixels, 3),
        "peak_rss_mb": round(peak, 0),
        "interpreter_mb": round(interpreter_mb, 0),
        "image_f32_mb": round(image_mb, 0),
        "inputs_f32_mb": round(_inputs_mb(inputs), 0),
        "peak_over_image": round(peak / image_mb, 2),
        "peak_over_inputs": round(peak / _inputs_mb(inputs), 2),
        "job_over_image": round((peak - interpreter_mb) / image_mb, 2),
        **_gpu_peak(),
        # What the engine reported (blind deblur: the kernel size; none when it was refused).
        **{key: value for key, value in ctx.report.items() if not isinstance(value, np.ndarray)},
    }
    if output_mb > image_mb:
        row["output_f32_mb"] = round(output_mb, 0)
        row["peak_over_output"] = round(peak / output_mb, 2)
    if scale:
        output_16bit_mb = samples * 2 / 2**20
        row["scale"] = scale
        row["output_mp"] = round(result.megapixels, 1)
        row["peak_over_output_16bit"] = round(peak / output_16bit_mb, 2)
        row["job_over_output_16bit"] = round((peak - interpreter_mb) / output_16bit_mb, 2)
    return row


SR_NETWORKS = {  # Compact (SRVGG) widths and depths: Real-ESRGAN general-x4v3, and a small one
    "x4v3": (64, 32),
    "small": (16, 4),
}


def sr_checkpoint(folder: Path, network: str = "x4v3") -> str:
    """A Compact network with random weights (speed and memory only): Real-ESRGAN
    general-x4v3's size, or `small` (about 60 times less work: for big photos on a CPU)."""
    import torch
    from spandrel.architectures.Compact import Compact

    features, convolutions = SR_NETWORKS[network]
    path = folder / f"compact_{network}_x4_random.pth"
    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=features, num_conv=convolutions, upscale=4)
    torch.save(net.state_dict(), path)
    return str(path)


def _gpu_peak() -> dict[str, float]:
    if "torch" not in sys.modules:
        return {}
    import torch

    if not torch.cuda.is_available():
        return {}
    return {"gpu_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 0)}


def measure(
    task: str,
    megapixels: float,
    engine: str | None = None,
    model: str | None = None,
    scale: float | None = None,
):
    """Run `child` in a fresh interpreter; returns its row or the error."""
    cmd = [sys.executable, "-m", "benchmarks.perf", "--child", task, str(megapixels)]
    cmd += ["--engine", engine] if engine else []
    cmd += ["--model", model] if model else []
    cmd += ["--scale", str(scale)] if scale else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {
            "task": task,
            "engine": engine or "default",
            "megapixels": megapixels,
            "error": tail,
        }
    return json.loads(done.stdout.strip().splitlines()[-1])


def batch_throughput(
    engine: str | None = None, count: int = 50, megapixels: float = 0.5
) -> dict[str, Any]:
    """Batch of `count` files (read, denoise, write) against compute alone on preloaded images."""
    from studio.core.imageio import read_image, write_image
    from studio.engine.batch import BatchSettings, Recipe, RecipeStep, plan_batch, run_batch
    from studio.engine.jobs import JobRequest, run_job
    from studio.engine.registry import build_registry

    registry = build_registry()
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "in"), Path(tmp, "out")
        src.mkdir()
        for i in range(count):
            write_image(Image(photo(megapixels, seed=i)), src / f"img{i:03d}.png")
        images = [read_image(p) for p in sorted(src.glob("*.png"))]
        start = time.perf_counter()
        for image in images:
            request = JobRequest("denoise", JobInputs((image,)), engine=engine)
            for _ in run_job(registry, request, RunContext()):
                pass
        compute = time.perf_counter() - start
        plan = plan_batch([src], out, task="denoise")
        settings = BatchSettings(Recipe(steps=[RecipeStep(task="denoise", engine=engine)]))
        start = time.perf_counter()
        for _ in run_batch(registry, plan, settings, RunContext()):
            pass
        batch = time.perf_counter() - start
    return {
        "engine": engine or registry.get("denoise", None).id,
        "images": count,
        "megapixels_each": megapixels,
        "compute_alone_s": round(compute, 2),
        "batch_s": round(batch, 2),
        "batch_over_compute": round(batch / compute, 3),
    }


def upscale_rows(
    sizes: list[float], scales: list[float], engines: list[str], network: str = "x4v3"
) -> list[dict[str, Any]]:
    """The `engines` (built-ins, and `model`: a Real-ESRGAN-sized network) at each size and
    scale; each row says whether its peak stays within `UPSCALE_BOUND` times the 16-bit
    output, counting the interpreter (`within_bound`) and leaving it out (`job_within_bound`)."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = sr_checkpoint(Path(folder), network) if "model" in engines else None
        for size in sizes:
            for scale in scales:
                for engine in engines:
                    model = checkpoint if engine == "model" else None
                    row = measure("upscale", size, engine, model, scale)
                    if "peak_over_output_16bit" in row:
                        row["within_bound"] = row["peak_over_output_16bit"] <= UPSCALE_BOUND
                        row["job_within_bound"] = row["job_over_output_16bit"] <= UPSCALE_BOUND
                    rows.append(row)
                    print(rows[-1], file=sys.stderr)
    return rows


def huge_rows(tasks: str, megapixels: float, model: str | None) -> list[dict[str, Any]]:
    """One big photo through each `task:engine` (default engine when none is named), one at a
    time; each row says whether its peak stays under `HUGE_LIMIT` times the larger of its
    input and output float32 images (an upscale's result is bigger than its input)."""
    rows = []
    for item in builtin_engines() if tasks == "all" else [t for t in tasks.split(",") if t]:
        task, _, engine = item.partition(":")
        scale = HUGE_UPSCALE if task == "upscale" else None
        rows.append(measure(task, megapixels, engine=engine or None, scale=scale))
        print(rows[-1], file=sys.stderr)
    if model:
        rows.append(measure("denoise", megapixels, engine="model", model=model))
    for row in rows:
        if "peak_rss_mb" in row:
            largest = max(row["image_f32_mb"], row.get("output_f32_mb", 0))
            row["under_4x"] = row["peak_rss_mb"] / largest < HUGE_LIMIT
    return rows


def builtin_engines() -> list[str]:
    """`task:engine` for every engine that runs without a model file, task by task."""
    from studio.engine.registry import build_registry

    registry = build_registry()
    return [
        f"{task}:{spec.id}"
        for task in (*TASKS, "upscale")
        for spec in registry.engines(task)
        if spec.available(RunContext()).ok
    ]


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    widths = {c: max(len(c), *(len(str(row.get(c, ""))) for row in rows)) for c in columns}
    print(f"\n{title}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("TASK", "MP"), help=argparse.SUPPRESS)
    parser.add_argument("--engine")
    parser.add_argument("--model")
    parser.add_argument("--sizes", default="1,12,24")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--huge-model", help="neural checkpoint for the 100-megapixel run")
    parser.add_argument("--skip-huge", action="store_true")
    parser.add_argument(
        "--huge-tasks",
        default=",".join((*TASKS, "upscale")),
        help="TASK or TASK:ENGINE list for the big-photo run (default: every task's default "
        "engine; e.g. denoise:nlm,hdr:merge), or 'all': every engine that needs no model",
    )
    parser.add_argument("--huge-megapixels", type=float, default=100.0)
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--neural", action="store_true", help="one model per architecture too")
    parser.add_argument("--batch-engines", default="", help="denoise engines; default: the default")
    parser.add_argument("--batch-megapixels", type=float, default=0.5)
    parser.add_argument("--scale", type=float, help=argparse.SUPPRESS)
    parser.add_argument(
        "--upscale", default="", help="scales for upscale rows at each size (e.g. 2,4)"
    )
    parser.add_argument(
        "--upscale-engines",
        default="detail,lanczos,model",
        help="upscale engines of those rows (model: a random Compact network)",
    )
    parser.add_argument("--upscale-network", choices=sorted(SR_NETWORKS), default="x4v3")
    args = parser.parse_args(argv)
    if args.child:
        task, megapixels = args.child[0], float(args.child[1])
        print(json.dumps(child(task, args.engine, megapixels, args.model, args.scale)))
        return 0
    report: dict[str, Any] = {"engines": [], "upscale": [], "huge": [], "batch": []}
    sizes = [float(s) for s in args.sizes.split(",") if s]
    runs: list[tuple[str, str | None, str | None]] = []
    for entry in filter(None, args.tasks.split(",")):
        task, _, engine = entry.partition(":")
        runs.append((task, engine or None, None))
    if args.neural:
        runs += [(task, "model", str(SHARED_MODELS / name)) for name, task in NEURAL.items()]
    for task, engine, model in runs:
        for size in sizes:
            report["engines"].append(measure(task, size, engine=engine, model=model))
            print(report["engines"][-1], file=sys.stderr)
    if args.upscale:
        scales = [float(s) for s in args.upscale.split(",")]
        engines = args.upscale_engines.split(",")
        report["upscale"] = upscale_rows(sizes, scales, engines, args.upscale_network)
    if not args.skip_batch:
        for engine in args.batch_engines.split(",") if args.batch_engines else [None]:
            report["batch"].append(batch_throughput(engine, megapixels=args.batch_megapixels))
            print(report["batch"][-1], file=sys.stderr)
    if not args.skip_huge:
        report["huge"] = huge_rows(args.huge_tasks, args.huge_megapixels, args.huge_model)
    print_table("Engines: seconds per megapixel and peak memory", report["engines"])
    print_table(
        "Upscale: seconds per input megapixel, peak memory over the 16-bit output (bound 2)",
        report["upscale"],
    )
    print_table("Batch throughput (reading and writing overlapped with compute)", report["batch"])
    print_table(
        f"{args.huge_megapixels:g} megapixels: peak host memory over the image's float32 size",
        report["huge"],
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "perf.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
