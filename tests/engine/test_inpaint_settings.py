"""Inpaint engines' settings: the slider ends the inspector and `studio engines` show are
taken and nothing past them is, and no setting means the defaults they show."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.errors import BadInputError
from studio.core.image import Image
from studio.core.protocol import JobInputs, RunContext
from studio.engine.jobs import JobRequest, run_job
from studio.engine.registry import build_registry
from tests.engine.test_inpaint import REGISTRY, _box_mask, _photo
from tests.helpers import finish

# (engine, setting, lowest, highest, just below, just above): the inspector's slider ends
RANGES = [
    ("telea", "radius", 1, 50, 0, 51),
    ("navier_stokes", "radius", 1, 50, 0, 51),
    ("patchmatch", "patch", 5, 15, 4, 16),
    ("patchmatch", "seed", 0, 2**31, -1, None),
]


def _fill(engine: str, **params: object) -> np.ndarray:
    """A 12-px hole in a 48-px photo of a cat, filled with `params`."""
    inputs = JobInputs((Image(_photo("chelsea", 48)),), {"mask": _box_mask(48, 18, 16, 12)})
    request = JobRequest("inpaint", inputs, engine=engine, params=params)
    return np.asarray(finish(run_job(REGISTRY, request, RunContext())).pixels)


@pytest.mark.parametrize(("engine", "setting", "low", "high", "below", "above"), RANGES)
def test_inpaint_settings_are_taken_to_the_ends_of_their_sliders_only(
    engine: str, setting: str, low: int, high: int, below: int, above: int | None
) -> None:
    """Each end fills the hole; a value past either end is a clear parameter error."""
    hole = _box_mask(48, 18, 16, 12) > 0.5
    untouched = _photo("chelsea", 48)
    for value in (low, high):
        filled = _fill(engine, **{setting: value})
        assert np.isfinite(filled).all(), (setting, value)
        assert np.array_equal(filled[~hole], untouched[~hole]), (setting, value)
    for value in (below, above):
        if value is not None:
            with pytest.raises(BadInputError, match=f"Invalid parameters.*{setting}"):
                _fill(engine, **{setting: value})


@pytest.mark.parametrize("engine", ["telea", "navier_stokes"])
def test_no_radius_means_the_5_px_the_inspector_shows(engine: str) -> None:
    default = _fill(engine)
    np.testing.assert_array_equal(default, _fill(engine, radius=5))
    assert not np.array_equal(default, _fill(engine, radius=6)), "the photo must tell them apart"


def test_no_patchmatch_settings_mean_13_px_patches_and_seed_0_as_the_inspector_shows() -> None:
    default = _fill("patchmatch")
    np.testing.assert_array_equal(default, _fill("patchmatch", patch=13, seed=0))
    assert not np.array_equal(default, _fill("patchmatch", patch=15, seed=0))
    assert not np.array_equal(default, _fill("patchmatch", patch=13, seed=1))


def test_patchmatch_is_the_inpaint_default_where_engines_are_listed() -> None:
    """The Models panel marks it "(default)" and `studio engines` lists it as the default."""
    registry = build_registry()  # with this test's own settings: nothing pinned
    assert [spec.id for spec in registry.engines("inpaint") if spec.default] == ["patchmatch"]
