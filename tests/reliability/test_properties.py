"""Property-based tests (hypothesis): whatever a user or a file feeds in, Studio either accepts
it and produces something valid, or refuses it with a clear `StudioError`; never another
exception type.

- Parameters: random values for every registered engine's fields (and unknown keys), through
  `validate_params` (the path of the CLI, recipes and the inspector) and, when valid, through
  `run_job` on a tiny picture.
- Masks: arbitrary arrays stored as mask files (any shape, sample type and values) through
  `read_mask`, and arbitrary region arrays through `run_job`.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import imagecodecs
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from studio.core.errors import BadInputError, StudioError
from studio.core.image import Image, ImageMeta
from studio.core.imageio import read_mask
from studio.core.protocol import EngineSpec, JobInputs, RunContext
from studio.core.registry import Registry
from studio.core.stored import as_image
from studio.engine.jobs import JobRequest, run_job, validate_params
from studio.engine.registry import build_registry

FEW = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI results do not flicker
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@cache
def registry() -> Registry:
    """Every built-in engine and none of the developer's installed models: the same engines,
    and the same examples, on every machine."""
    with tempfile.TemporaryDirectory() as empty:
        env = {"STUDIO_HOME": empty, "STUDIO_MODELS_DIR": empty}
        with mock.patch.dict(os.environ, env):
            return build_registry()


def _engines() -> list[EngineSpec]:
    return [spec for task in registry().tasks() for spec in registry().engines(task)]


ENGINE_IDS = [f"{spec.task}/{spec.id}" for spec in _engines()]


def _spec(engine: str) -> EngineSpec:
    task, engine_id = engine.split("/")
    return registry().get(task, engine_id)


# --- parameters ------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["1/60", "1e400", "nan", "-inf", "0x10", "", " ", "true", "[1,2]"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


# Recipe files may name any key; line breaks in one would be echoed into the message.
KEY_CHARACTERS = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))


def _near(schema: dict[str, Any], max_count: int | None = None) -> st.SearchStrategy[Any]:
    """Values at, inside and just outside a field's documented bounds and choices.

    `max_count` caps whole-number fields (iterations...) to keep runs short.
    """
    options: list[st.SearchStrategy[Any]] = []
    for variant in schema.get("anyOf", []):  # optional fields keep their bounds in here
        schema = {**variant, **schema}
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        lo = float(low if low is not None else -1e6)
        hi = float(high if high is not None else 1e6)
        if max_count is not None and schema.get("type") == "integer":
            hi = min(hi, lo + max_count)
        span = max(hi - lo, 1.0)
        options.append(st.floats(lo - span * 0.1, hi + span * 0.1))
        options.append(st.integers(int(lo) - 2, int(min(hi, lo + 10_000)) + 2))
        options.append(st.sampled_from([lo, hi]))
    choices = schema.get("enum") or [
        option["const"] for option in schema.get("anyOf", []) if "const" in option
    ]
    if choices:
        options.append(st.sampled_from(choices))
    if "default" in schema:
        options.append(st.just(schema["default"]))
    return st.one_of(*options) if options else VALUES


@st.composite
def param_dicts(draw: st.DrawFn, spec: EngineSpec, hostile: bool = True) -> dict[str, Any]:
    """Values for some of the engine's fields; `hostile` adds any value and unknown keys."""
    properties = spec.params.model_json_schema().get("properties", {})
    chosen = draw(st.lists(st.sampled_from(sorted(properties)), unique=True)) if properties else []
    values = {
        name: draw(_near(properties[name]) | VALUES if hostile else _near(properties[name], 30))
        for name in chosen
    }
    if hostile and draw(st.booleans()):
        values[draw(st.text(KEY_CHARACTERS, min_size=1, max_size=8))] = draw(VALUES)
    return values


@pytest.mark.parametrize("engine", ENGINE_IDS)
@FEW
@given(data=st.data())
def test_parameters_validate_or_give_one_clear_line(engine: str, data: st.DataObject) -> None:
    spec = _spec(engine)
    values = data.draw(param_dicts(spec))
    try:
        params = validate_params(spec, values)
    except BadInputError as err:
        assert "\n" not in str(err) and spec.id in str(err)
    else:
        assert isinstance(params, spec.params)


def _inputs(spec: EngineSpec) -> JobInputs:
    rng = np.random.default_rng(0)
    base = rng.random((16, 20, 3), dtype=np.float32) * 0.6 + 0.2
    meta = ImageMeta(bit_depth=8)
    if spec.merges_images:
        images = tuple(Image(np.clip(base * gain, 0, 1), meta) for gain in (0.5, 1.0, 1.6))
    else:
        images = (Image(base, meta),)
    mask = np.zeros((16, 20), np.float32)
    mask[5:9, 6:12] = 1.0
    return JobInputs(images, {"mask": mask, "style": Image(base[::-1].copy(), meta)})


RUNNABLE = [engine for engine in ENGINE_IDS if _spec(engine).available(RunContext()).ok]


@pytest.mark.parametrize("engine", RUNNABLE)
@settings(FEW, max_examples=3)  # every engine gets its own examples; the suite stays quick
@given(data=st.data())
def test_valid_parameters_run_or_fail_with_a_studio_error(engine: str, data: st.DataObject) -> None:
    spec = _spec(engine)
    values = data.draw(param_dicts(spec, hostile=False), label="params")
    try:
        validate_params(spec, values)
    except BadInputError:
        event("invalid")
        return
    event("ran")
    request = JobRequest(spec.task, _inputs(spec), spec.id, values)
    job = run_job(registry(), request, RunContext(device="cpu"))
    try:
        while True:
            next(job)
    except StopIteration as stop:
        result = as_image(stop.value)  # an enlargement comes back at its stored depth
        assert np.isfinite(result.pixels).all()
    except StudioError as err:
        assert str(err).strip() and "\n" not in str(err)


# --- masks -----------------------------------------------------------------------------------

MASK_SIZE = (6, 7)
DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32])


@st.composite
def mask_files(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    """(format, samples) a user's mask file might hold, odd sizes and values included."""
    dtype = draw(DTYPES)
    height = draw(st.sampled_from([MASK_SIZE[0], 1, MASK_SIZE[0] + 1]))
    width = draw(st.sampled_from([MASK_SIZE[1], MASK_SIZE[1] - 1]))
    channels = draw(st.sampled_from([None, 1, 2, 3, 4]))
    shape = (height, width) if channels is None else (height, width, channels)
    if dtype == np.float32:
        elements = st.floats(width=32, allow_nan=True, allow_infinity=True)
        fmt = "tif"
    else:
        elements = None
        fmt = draw(st.sampled_from(["png", "tif"]))
    samples = draw(hnp.arrays(dtype, shape, elements=elements))
    return fmt, samples


def _write_mask(path: Path, fmt: str, samples: np.ndarray) -> None:
    if samples.ndim == 3 and samples.shape[2] == 1:
        samples = samples[..., 0]
    if fmt == "png":
        path.write_bytes(imagecodecs.png_encode(samples))
        return
    rgb = samples.ndim == 3 and samples.shape[2] >= 3
    extras = samples.ndim == 3 and samples.shape[2] in (2, 4)
    tifffile.imwrite(
        path,
        samples,
        photometric="rgb" if rgb else "minisblack",
        planarconfig="contig" if samples.ndim == 3 else None,
        extrasamples=("unassalpha",) if extras else None,
    )


@settings(FEW, max_examples=60)
@given(case=mask_files())
def test_any_mask_file_gives_a_mask_in_0_1_or_a_clear_error(
    tmp_path: Path, case: tuple[str, np.ndarray]
) -> None:
    fmt, samples = case
    path = tmp_path / f"mask.{fmt}"
    _write_mask(path, fmt, samples)
    try:
        mask = read_mask(path, MASK_SIZE)
    except BadInputError as err:
        assert "\n" not in str(err)
        return
    assert samples.shape[:2] == MASK_SIZE
    assert mask.shape == MASK_SIZE and mask.dtype == np.float32
    assert np.isfinite(mask).all() and mask.min() >= 0.0 and mask.max() <= 1.0


REGION_DTYPES = st.sampled_from(
    [np.bool_, np.uint8, np.int16, np.uint16, np.int64, np.float16, np.float32, np.float64]
)


@st.composite
def regions(draw: st.DrawFn) -> np.ndarray:
    shape = draw(st.sampled_from([(8, 10), (10, 8), (8, 10, 1), (8, 10, 3), (8,), (0, 10), (1, 1)]))
    dtype = draw(REGION_DTYPES)
    array: np.ndarray = draw(hnp.arrays(dtype, shape))
    return array


@FEW
@given(region=regions(), opacity=st.floats(0.0, 1.0))
@example(region=np.zeros(8, np.bool_), opacity=0.5)
@example(region=np.full((8, 10), np.nan), opacity=1.0)
def test_any_region_array_blends_validly_or_gives_a_clear_error(
    region: np.ndarray, opacity: float
) -> None:
    pixels = np.random.default_rng(0).random((8, 10, 3), dtype=np.float32)
    image = Image(pixels, ImageMeta())
    request = JobRequest(
        "denoise",
        JobInputs((image,)),
        "gaussian",
        {"sigma": 1.0},
        opacity=opacity,
        region=region,
    )
    job = run_job(registry(), request, RunContext())
    try:
        while True:
            next(job)
    except StopIteration as stop:
        result: Image = stop.value
    except BadInputError as err:
        assert "\n" not in str(err)
        return
    assert result.pixels.shape == pixels.shape
    assert np.isfinite(result.pixels).all(), "the region let NaN or infinity into the result"
    low = np.minimum(pixels, 0.0).min()
    assert result.pixels.min() >= low - 1e-5 and result.pixels.max() <= 1.0 + 1e-5
