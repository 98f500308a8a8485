"""Built-in inpainting: masks are checked, diffusion fills scratches, PatchMatch keeps texture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data, transform

from studio.core.errors import BadInputError, MissingInputError
from studio.core.image import Image, ImageMeta
from studio.core.protocol import JobInputs, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.registry import build_registry
from tests.helpers import finish

REGISTRY = build_registry()


def _photo(name: str, size: int = 160) -> np.ndarray:
    pixels = transform.resize(getattr(data, name)(), (size, size), anti_aliasing=True)
    return np.asarray(pixels, dtype=np.float32)


def _box_mask(size: int, top: int, left: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[top : top + side, left : left + side] = 1.0
    return mask


def _inpaint(engine: str, pixels: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The engine's result on `pixels` with the hole blanked first, as a damaged photo would
    be: an engine that returns its input then scores no better than the blank."""
    if mask is not None and mask.shape == pixels.shape[:2]:
        pixels = np.where(mask[..., None] > 0.5, np.float32(0.5), pixels).astype(np.float32)
    inputs = JobInputs((Image(pixels),), {} if mask is None else {"mask": mask})
    job = run_job(REGISTRY, JobRequest("inpaint", inputs, engine=engine), RunContext())
    try:
        while True:
            next(job)
    except StopIteration as stop:
        return np.asarray(stop.value.pixels)


def _hole_psnr(result: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / ((result - truth)[hole] ** 2).mean()))


def _laplacian_rms(pixels: np.ndarray, hole: np.ndarray) -> float:
    laplacian = cv2.Laplacian(pixels.mean(axis=2), cv2.CV_32F)
    return float(np.sqrt((laplacian[hole] ** 2).mean()))


@pytest.mark.parametrize("engine", ["patchmatch", "telea", "navier_stokes"])
def test_missing_or_mismatched_mask_is_a_clear_error(engine: str) -> None:
    pixels = _photo("coffee", 32)
    with pytest.raises(MissingInputError, match="--mask FILE"):
        _inpaint(engine, pixels, None)
    with pytest.raises(BadInputError, match="Mask is 20x30 but the image is 32x32"):
        _inpaint(engine, pixels, np.zeros((30, 20), np.float32))
    with pytest.raises(BadInputError, match="Mask is 32x32x1 but the image is 32x32"):
        _inpaint(engine, pixels, np.zeros((32, 32, 1), np.float32))


@pytest.mark.parametrize("engine", ["patchmatch", "telea", "navier_stokes"])
def test_only_the_hole_changes(engine: str) -> None:
    pixels = _photo("chelsea", 96)
    mask = _box_mask(96, 40, 30, 12)
    result = _inpaint(engine, pixels, mask)
    hole = mask > 0.5
    np.testing.assert_array_equal(result[~hole], pixels[~hole])
    assert np.abs(result[hole] - pixels[hole]).mean() < 0.2


def test_diffusion_fills_a_scratch_on_a_smooth_gradient() -> None:
    ramp = np.linspace(0.2, 0.8, 128, dtype=np.float32)
    pixels = np.repeat(np.tile(ramp, (128, 1))[..., None], 3, axis=2)
    mask = np.zeros((128, 128), np.float32)
    mask[60:63, 10:118] = 1.0
    for engine in ("telea", "navier_stokes"):
        assert _hole_psnr(_inpaint(engine, pixels, mask), pixels, mask > 0.5) > 35.0


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_patchmatch_is_textured_and_close_to_telea_inside_the_hole(name: str) -> None:
    pixels = _photo(name)
    mask = _box_mask(160, 60, 50, 32)  # 4 % of the image
    hole = mask > 0.5
    telea, exemplar = (_inpaint(e, pixels, mask) for e in ("telea", "patchmatch"))
    assert _hole_psnr(exemplar, pixels, hole) > _hole_psnr(telea, pixels, hole) - 1.0
    truth_energy = _laplacian_rms(pixels, hole)
    assert _laplacian_rms(exemplar, hole) >= 0.5 * truth_energy
    assert _laplacian_rms(telea, hole) < 0.5 * truth_energy  # the smearing it is measured against


def test_patchmatch_is_repeatable_and_cancellable() -> None:
    pixels, mask = _photo("coffee", 96), _box_mask(96, 30, 30, 16)
    np.testing.assert_array_equal(
        _inpaint("patchmatch", pixels, mask), _inpaint("patchmatch", pixels, mask)
    )
    inputs = JobInputs((Image(pixels),), {"mask": mask})
    steps = list(run_job(REGISTRY, JobRequest("inpaint", inputs), RunContext()))
    assert len(steps) >= 4, "a cancel can only land between progress reports"
    job = run_job(REGISTRY, JobRequest("inpaint", inputs), RunContext())
    first = next(job)
    job.close()  # what the worker does on Cancel: no further step runs, no result comes
    assert first == steps[0] and job.gi_frame is None
    with pytest.raises(StopIteration):
        next(job)


def _eight_bit_photo() -> np.ndarray:
    """An 8-bit astronaut crop with black and white beside the hole: its full range."""
    eight = data.astronaut()[40:136, 160:256].copy()
    eight[20, 20], eight[70, 70] = 0, 255
    return eight


@pytest.mark.parametrize(("radius", "context"), [(3, 32), (50, 51)])
@pytest.mark.parametrize(
    ("engine", "flag"), [("telea", cv2.INPAINT_TELEA), ("navier_stokes", cv2.INPAINT_NS)]
)
def test_diffusion_fills_an_8_bit_photo_exactly_as_opencv(
    engine: str, flag: int, radius: int, context: int
) -> None:
    """OpenCV's own inpainting of the whole 8-bit photo, at the radius given: no level is lost.
    Studio fills a crop around the hole: 32 px on each side, or all OpenCV reads at a larger
    radius (the radius and one more px). The photo's only black and white pixels lie at that
    crop's corners, so a crop a pixel smaller on any side would rescale the levels."""
    eight = np.clip(data.astronaut()[:160, 150:310], 1, 254)
    hole = _box_mask(160, 60, 60, 20) > 0.5
    eight[60 - context, 60 - context], eight[79 + context, 79 + context] = 0, 255
    inputs = JobInputs((Image(eight.astype(np.float32) / 255),), {"mask": hole.astype(np.float32)})
    request = JobRequest("inpaint", inputs, engine=engine, params={"radius": radius})
    result = finish(run_job(REGISTRY, request, RunContext())).pixels
    expected = cv2.inpaint(eight, hole.astype(np.uint8), radius, flag).astype(np.float32) / 255
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize(
    ("engine", "params", "context"),
    [("patchmatch", {}, 32), ("telea", {}, 32), ("navier_stokes", {"radius": 50}, 51)],
)
def test_nothing_beyond_the_crop_around_the_hole_changes_its_fill(
    engine: str, params: dict[str, int], context: int
) -> None:
    """A dust spot in a 100-MP photo costs little: it is filled from a crop around it (32 px
    on each side, more at a large radius). The photo cut down to that crop fills the same,
    though a black frame lies just beyond it (one pixel more would change the fill)."""
    portrait = transform.resize(data.coffee(), (200, 128), anti_aliasing=True)
    hole = np.zeros((200, 128), np.float32)
    hole[136:146, 59:69] = 1.0
    rows, cols = slice(136 - context, 146 + context), slice(59 - context, 69 + context)
    framed = np.zeros((200, 128, 3), np.float32)
    framed[rows, cols] = np.clip(portrait[rows, cols], 0.1, 0.9)

    def fill(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        inputs = JobInputs((Image(np.ascontiguousarray(pixels)),), {"mask": mask})
        request = JobRequest("inpaint", inputs, engine=engine, params=params)
        return np.asarray(finish(run_job(REGISTRY, request, RunContext())).pixels)

    whole = fill(framed, hole)
    assert np.abs(whole - framed)[hole > 0.5].max() > 0.05, "the hole was filled"
    np.testing.assert_array_equal(whole[rows, cols], fill(framed[rows, cols], hole[rows, cols]))


def test_a_diffusion_fill_is_one_step_the_batch_shows_without_a_count() -> None:
    """Telea reports filling, then filled: one step of one, so `studio batch` shows no count
    that would never complete."""
    inputs = JobInputs((Image(_photo("coffee", 48)),), {"mask": _box_mask(48, 18, 18, 8)})
    for engine in ("telea", "navier_stokes"):
        job = run_job(REGISTRY, JobRequest("inpaint", inputs, engine=engine), RunContext())
        assert [(step.done, step.total) for step in job] == [(0, 1), (1, 1)]


@pytest.mark.parametrize("engine", ["telea", "navier_stokes"])
def test_diffusion_fills_a_float_photo_on_its_own_range(engine: str) -> None:
    """A float photo (values -1 to 4) gets the same fill as the [0, 1] photo, scaled back."""
    pixels = _eight_bit_photo().astype(np.float32) / 255
    mask = _box_mask(96, 36, 30, 20)
    unit = _inpaint(engine, pixels, mask)
    wide = pixels * 5.0 - 1.0
    wide_mask = np.where(mask[..., None] > 0.5, np.float32(1.5), wide).astype(np.float32)
    inputs = JobInputs((Image(wide_mask, ImageMeta(bit_depth=32)),), {"mask": mask})
    result = finish(run_job(REGISTRY, JobRequest("inpaint", inputs, engine=engine), RunContext()))
    np.testing.assert_allclose(result.pixels, unit * 5.0 - 1.0, atol=1e-5)


@pytest.mark.parametrize("engine", ["patchmatch", "telea", "navier_stokes"])
def test_an_empty_mask_returns_the_photo_untouched(engine: str) -> None:
    pixels = _photo("coffee", 48)
    inputs = JobInputs((Image(pixels),), {"mask": np.zeros((48, 48), np.float32)})
    job = run_job(REGISTRY, JobRequest("inpaint", inputs, engine=engine), RunContext())
    reports = []
    while True:
        try:
            reports.append(next(job))
        except StopIteration as stop:
            result = stop.value.pixels
            break
    np.testing.assert_array_equal(result, pixels)
    assert reports[-1].done == reports[-1].total == 1


@pytest.mark.parametrize("engine", ["patchmatch", "telea", "navier_stokes"])
@pytest.mark.parametrize("scratch", [(0, slice(10, 80)), (slice(20, 90), 95)])
def test_a_one_pixel_scratch_along_the_photo_edges_is_filled(
    engine: str, scratch: tuple[int | slice, int | slice]
) -> None:
    """A scratch on the first row, or on the last column: filled to the very edge."""
    ramp = np.linspace(0.2, 0.8, 96, dtype=np.float32)
    pixels = np.repeat((ramp[:, None] * 0.5 + ramp[None, :] * 0.5)[..., None], 3, axis=2)
    mask = np.zeros((96, 96), np.float32)
    mask[scratch] = 1.0
    result = _inpaint(engine, pixels, mask)
    assert _hole_psnr(result, pixels, mask > 0.5) > 30.0


@pytest.mark.parametrize("engine", ["patchmatch", "telea"])
def test_a_soft_mask_fills_only_where_it_is_more_than_half(engine: str) -> None:
    """A feathered brush: pixels painted half or less are kept, more than half are filled.
    Hole PSNR measured: blanked 11.90, patchmatch 15.78, telea 15.37 dB."""
    pixels = _photo("chelsea", 96)
    mask = np.zeros((96, 96), np.float32)
    mask[30:50, 30:50] = 0.6
    mask[30:50, 50:56] = 0.5
    result = _inpaint(engine, pixels, mask)
    kept = mask <= 0.5
    np.testing.assert_array_equal(result[kept], pixels[kept])
    blanked = np.where(mask[..., None] > 0.5, np.float32(0.5), pixels)
    assert _hole_psnr(result, pixels, mask > 0.5) > _hole_psnr(blanked, pixels, mask > 0.5) + 2.5


@pytest.mark.parametrize("frame", [3, 10])
def test_patchmatch_fills_by_diffusion_when_too_little_picture_surrounds_the_hole(
    frame: int,
) -> None:
    """A 3- or 10-px frame around the hole holds no whole 13-px patch: PatchMatch fills as
    Telea (the 10-px frame was a ValueError: patches over the photo's edge were counted)."""
    pixels = _photo("coffee", 48)
    mask = np.zeros((48, 48), np.float32)
    mask[frame:-frame, frame:-frame] = 1.0
    np.testing.assert_array_equal(
        _inpaint("patchmatch", pixels, mask), _inpaint("telea", pixels, mask)
    )


@pytest.mark.parametrize(("corner", "copies"), [((20, 20), True), ((21, 19), False)])
def test_patchmatch_copies_patches_once_64_whole_ones_are_left(
    corner: tuple[int, int], copies: bool
) -> None:
    """Only a corner of the photo is kept: 20x20 px hold 64 whole 13-px patches, enough to copy
    from; 21x19 px hold 63, and the hole is filled by diffusion, as Telea fills it."""
    pixels = _photo("coffee", 32)
    mask = np.ones((32, 32), np.float32)
    mask[: corner[0], : corner[1]] = 0.0
    exemplar, telea = (_inpaint(engine, pixels, mask) for engine in ("patchmatch", "telea"))
    assert np.array_equal(exemplar, telea) != copies


def test_patchmatch_seeds_and_even_patch_sizes() -> None:
    """Another seed gives another fill (the same seed the same: test above); an even patch
    size is the odd size above it."""
    pixels, mask = _photo("coffee", 48), _box_mask(48, 18, 18, 10)

    def fill(**params: object) -> np.ndarray:
        inputs = JobInputs((Image(pixels),), {"mask": mask})
        request = JobRequest("inpaint", inputs, engine="patchmatch", params=params)
        return finish(run_job(REGISTRY, request, RunContext())).pixels

    assert np.abs(fill(seed=0) - fill(seed=1)).max() > 0.05
    np.testing.assert_array_equal(fill(patch=6), fill(patch=7))
