"""The audit's planted bugs, one at a time: does the suite catch each?

    python -m benchmarks.planted [--without-shared] [--bugs nlm-identity,...] [--timeout 900]

Each bug is planted in a private copy of the repository and the tests meant to catch it run
there (after a check that they pass without it).
With --without-shared the tests see no ../shared (STUDIO_TEST_SHARED names a missing folder),
as on CI. Prints caught/missed per bug; a missed bug is a hole in the suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.mutant_tests import copy_repository, run_tests


@dataclass(frozen=True)
class Bug:
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


_UNCHANGED = (
    "def _unchanged():\n            yield Progress(0, 1, 'x')\n            return crop\n\n"
    "        return _unchanged()"
)
_SPREAD = (
    "chroma = np.stack([cv2.GaussianBlur(small_hints[..., c] * small_mask, (0, 0), 4.0) "
    "for c in range(2)], -1) / np.maximum(cv2.GaussianBlur(small_mask.astype(np.float32), "
    "(0, 0), 4.0), 1e-12)[..., None]"
)


def _returns_input(module: str, function: str, params: str, tests: tuple[str, ...]) -> Bug:
    """The engine's run function returning its (first) input unchanged."""
    signature = f"def {function}(inputs: JobInputs, params: {params}, ctx: RunContext) -> OpRun:\n"
    body = "    yield Progress(0, 1, 'x')\n    return inputs.image\n"
    return Bug(f"studio/engine/ops/{module}.py", signature, signature + body, tests)


_TRIVIAL = "tests/engine/test_beats_trivial.py::"
_INPAINT = (_TRIVIAL + "test_inpaint_fills_a_blanked_hole_like_telea_or_better",)
_DENOISE = (_TRIVIAL + "test_denoise_beats_the_best_gaussian_blur",)
_DEBLUR = (_TRIVIAL + "test_deblur_beats_the_best_unsharp_mask",)
BUGS = {
    "patchmatch-identity": Bug(
        "studio/engine/ops/inpaint.py",
        "return fill_hole(crop, hole, patch=patch, seed=params.seed)",
        _UNCHANGED,
        _INPAINT,
    ),
    "navier-stokes-identity": _returns_input(
        "inpaint", "run_navier_stokes", "DiffusionParams", _INPAINT
    ),
    "nlm-identity": _returns_input("denoise", "run_nlm", "NoiseParams", _DENOISE),
    "wiener-identity": _returns_input("deblur", "run_wiener", "PsfParams", _DEBLUR),
    "colorize-gaussian-spread": Bug(
        "studio/engine/ops/colorize.py",
        "chroma = solve_chroma(small_y, small_mask, small_hints, params.sigma_floor)",
        _SPREAD,
        ("tests/engine/test_beats_trivial.py::test_colorize_beats_the_best_spread_of_the_hints",),
    ),
    "ffdnet-sigma-times-255": Bug(
        "studio/engine/neural/runner.py",
        'Extras(sigma=float(getattr(params, "sigma", 0.0)) / 255.0)',
        'Extras(sigma=float(getattr(params, "sigma", 0.0)))',
        ("tests/engine/neural/test_reference.py",),
    ),
    "tiles-without-overlap": Bug(
        "studio/engine/neural/executor.py",
        "return min(model.tile_overlap, tile // 4)",
        "return 0",
        ("tests/engine/neural/test_reference.py",),
    ),
    "tiff-drops-gps": Bug(
        "studio/core/imageio/tiff.py",
        "    exiflib.GPS_IFD: exiflib.GPS_IFD - 1,\n",
        "",
        ("tests/core/test_metadata_roundtrip.py",),
    ),
    "wrong-normalisation": Bug(
        "studio/engine/neural/inference.py",
        "x = _to_model_channels(x, model, run.batch_channels)",
        "x = _to_model_channels(x * 2 - 1, model, run.batch_channels)",
        ("tests/engine/neural/test_reference.py",),
    ),
}


_IDENTITIES = {
    "cbm3d": ("denoise", "run_cbm3d", "NoiseParams", _DENOISE),
    "gaussian": (
        "denoise",
        "run_gaussian",
        "GaussianParams",
        _DENOISE,
    ),
    "hyper-laplacian": (
        "deblur",
        "run_hyper_laplacian",
        "PsfParams",
        _DEBLUR,
    ),
    "richardson-lucy": (
        "deblur",
        "run_richardson_lucy",
        "RichardsonLucyParams",
        _DEBLUR,
    ),
    "auto-deblur": ("deblur", "run_auto", "AutoParams", ("tests/engine/test_deblur.py",)),
    "telea": (
        "inpaint",
        "run_telea",
        "DiffusionParams",
        _INPAINT,
    ),
    "merge": ("hdr", "run_merge", "MergeParams", ("tests/engine/test_hdr.py",)),
    "fusion": ("hdr", "run_fusion", "FusionParams", ("tests/engine/test_hdr.py",)),
    "tonemap": ("hdr", "run_tonemap", "TonemapParams", ("tests/engine/test_hdr.py",)),
    "colour-transfer": (
        "style",
        "run_color_transfer",
        "ColourParams",
        ("tests/engine/test_style.py",),
    ),
    "histogram": ("style", "run_histogram", "ColourParams", ("tests/engine/test_style.py",)),
    "painterly": ("style", "run_painterly", "PainterlyParams", ("tests/engine/test_style.py",)),
}
BUGS.update({f"{name}-identity": _returns_input(*args) for name, args in _IDENTITIES.items()})


def check(name: str, root: Path, timeout: float, green: dict[tuple[str, ...], bool]) -> str:
    """'caught' or 'MISSED'; `green` caches whether each set of tests passes unplanted."""
    bug = BUGS[name]
    path = root / bug.path
    source = path.read_text(encoding="utf-8")
    if bug.old not in source:
        return "not plantable (code changed)"
    if bug.tests not in green:
        green[bug.tests] = run_tests(root, list(bug.tests), timeout) == "passed"
    if not green[bug.tests]:
        return "unknown: the tests fail without the bug"
    path.write_text(source.replace(bug.old, bug.new, 1), encoding="utf-8")
    try:
        status = run_tests(root, list(bug.tests), timeout)
    finally:
        path.write_text(source, encoding="utf-8")
    return {"failed": "caught", "timeout": "caught (timeout)", "passed": "MISSED"}[status]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bugs", default=",".join(BUGS))
    parser.add_argument("--without-shared", action="store_true")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    missed = 0
    green: dict[tuple[str, ...], bool] = {}
    with tempfile.TemporaryDirectory(prefix="studio-planted-") as folder:
        root = Path(folder) / "repo"
        root.mkdir()
        copy_repository(root)
        if args.without_shared:
            os.environ["STUDIO_TEST_SHARED"] = str(Path(folder) / "no-shared")
        for name in args.bugs.split(","):
            result = check(name, root, args.timeout, green)
            missed += result == "MISSED"
            print(f"{name:<28}{result}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
