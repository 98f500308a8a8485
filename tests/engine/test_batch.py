"""The batch runner: planning, recipes, failures, cancel, resume, retry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from pydantic import Field

from studio.core.errors import BadInputError, EngineUnavailableError, UsageError
from studio.core.image import Image
from studio.core.imageio import write_image
from studio.core.imageio.encoders import ENCODERS
from studio.core.protocol import (
    MASK,
    Availability,
    EngineInput,
    EngineSpec,
    JobInputs,
    OpRun,
    Params,
    Progress,
    RunContext,
)
from studio.core.registry import Registry
from studio.engine.batch import (
    MANIFEST_NAME,
    BatchSettings,
    ItemFailed,
    ItemFinished,
    ItemProgress,
    ItemSkipped,
    ItemStarted,
    ItemStatus,
    Recipe,
    RecipeStep,
    load_recipe,
    plan_batch,
    prepare_recipe,
    run_batch,
    save_recipe,
)


class ShiftParams(Params):
    amount: float = Field(0.1, ge=0.0, le=1.0)


def run_shift(inputs: JobInputs, params: ShiftParams, ctx: RunContext) -> OpRun:
    """Adds `amount` row by row (several progress steps); refuses all-black images."""
    image = inputs.image
    if image.pixels.max() < 0.01:
        raise BadInputError("This picture is completely black")
    out = image.pixels.copy()
    for row in range(0, image.height, 16):
        yield Progress(row, image.height, "Shifting")
        out[row : row + 16] = np.clip(out[row : row + 16] + params.amount, 0.0, 1.0)
    yield Progress(image.height, image.height, "Shifting")
    return image.with_pixels(out)


SHIFT = EngineSpec("denoise", "shift", "Shift", ShiftParams, run_shift, default=True)


def registry() -> Registry:
    return Registry([SHIFT])


def png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


def load(path: Path) -> np.ndarray:
    with PILImage.open(path) as image:
        return np.asarray(image)


def photos(folder: Path, count: int, rng: np.random.Generator, size: int = 48) -> list[Path]:
    return [
        png(folder / f"img{i:02d}.png", rng.integers(0, 200, (size, size + 8, 3), dtype=np.uint8))
        for i in range(count)
    ]


def settings(**kwargs: object) -> BatchSettings:
    recipe = kwargs.pop("recipe", Recipe(steps=[RecipeStep(task="denoise")]))
    return BatchSettings(recipe=recipe, **kwargs)  # type: ignore[arg-type]


def drain(events):  # type: ignore[no-untyped-def]
    collected = []
    while True:
        try:
            collected.append(next(events))
        except StopIteration as stop:
            return collected, stop.value


def expected_shift(source: Path, amount: float) -> np.ndarray:
    shifted = np.clip(load(source) / 255.0 + amount, 0.0, 1.0)
    return np.round(shifted * 255.0)


def leftovers(out_dir: Path) -> list[str]:
    """Files in the output folder that are neither outputs nor the manifest."""
    return sorted(
        p.name
        for p in out_dir.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME and p.suffix.lower() != ".png"
    )


# --- planning ---------------------------------------------------------------------------------


def test_plan_takes_supported_images_sorted_and_recurses_on_request(tmp_path: Path) -> None:
    src = tmp_path / "shoot"
    pixels = np.zeros((8, 8, 3), np.uint8)
    for name in ["b.png", "a.png", "sub/c.png", "sub/deeper/d.png", ".hidden.png"]:
        png(src / name, pixels)
    (src / "notes.txt").write_text("not an image")
    flat = plan_batch([src], tmp_path / "out", task="denoise")
    assert [item.inputs[0].name for item in flat.items] == ["a.png", "b.png"]
    deep = plan_batch([src], tmp_path / "out", task="denoise", recursive=True)
    rel = [item.output.relative_to(deep.out_dir).as_posix() for item in deep.items]
    assert rel == [
        "a_denoise.png",
        "b_denoise.png",
        "sub/c_denoise.png",
        "sub/deeper/d_denoise.png",
    ]


def test_outputs_never_equal_inputs_and_clashes_get_suffixes(tmp_path: Path) -> None:
    pixels = np.zeros((8, 8, 3), np.uint8)
    a_png, a_jpg = png(tmp_path / "a.png", pixels), png(tmp_path / "a.jpg", pixels)
    plan = plan_batch([tmp_path], tmp_path, task="denoise", template="{stem}", fmt="png")
    outputs = [item.output for item in plan.items]
    assert len(set(outputs)) == 2
    assert not {a_png.resolve(), a_jpg.resolve()} & set(outputs)
    assert {p.name for p in outputs} == {"a_2.png", "a_3.png"}


def test_same_file_twice_is_planned_once_and_missing_source_is_a_usage_error(
    tmp_path: Path,
) -> None:
    a = png(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert len(plan_batch([a, tmp_path, a], tmp_path / "o", task="t").items) == 1
    with pytest.raises(UsageError, match="No such file"):
        plan_batch([tmp_path / "missing.png"], tmp_path / "o", task="t")


@pytest.mark.parametrize("template", ["{stem}_{nope}", "sub/{stem}", "{stem", "  "])
def test_bad_name_templates_are_usage_errors(tmp_path: Path, template: str) -> None:
    with pytest.raises(UsageError):
        plan_batch([tmp_path], tmp_path / "o", task="t", template=template)


def test_group_by_folder_makes_one_item_per_bracket_folder(tmp_path: Path) -> None:
    pixels = np.zeros((8, 8, 3), np.uint8)
    for folder in ("set1", "set2"):
        for ev in ("-2", "0", "+2"):
            png(tmp_path / "brackets" / folder / f"ev{ev}.png", pixels)
    plan = plan_batch(
        [tmp_path / "brackets"], tmp_path / "out", task="hdr", recursive=True, group_by_folder=True
    )
    assert [item.output.name for item in plan.items] == ["set1_hdr.png", "set2_hdr.png"]
    assert all(len(item.inputs) == 3 for item in plan.items)


# --- recipes ----------------------------------------------------------------------------------


def test_recipes_load_from_json_and_toml_and_round_trip(tmp_path: Path) -> None:
    toml = tmp_path / "r.toml"
    toml.write_text(
        '[[steps]]\ntask = "denoise"\nparams = { amount = 0.2 }\n\n'
        '[[steps]]\ntask = "denoise"\nengine = "shift"\nopacity = 0.5\n'
    )
    recipe = load_recipe(toml)
    assert [s.params for s in recipe.steps] == [{"amount": 0.2}, {}]
    assert recipe.steps[1].engine == "shift" and recipe.steps[1].opacity == 0.5
    saved = tmp_path / "r.json"
    save_recipe(recipe, saved)
    assert load_recipe(saved) == recipe
    bare = tmp_path / "list.json"
    bare.write_text(json.dumps([{"task": "denoise"}]))
    assert load_recipe(bare).steps == [RecipeStep(task="denoise")]


@pytest.mark.parametrize(
    "text", ["{not json", '{"steps": []}', '{"steps": [{"task": "denoise", "colour": 1}]}']
)
def test_invalid_recipe_files_are_bad_input(tmp_path: Path, text: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(text)
    with pytest.raises(BadInputError, match=r"r\.json"):
        load_recipe(path)


def test_every_step_is_checked_before_the_batch_starts(tmp_path: Path) -> None:
    ok, bad = RecipeStep(task="denoise"), RecipeStep(task="denoise", params={"amount": 7})
    with pytest.raises(BadInputError, match="amount"):
        prepare_recipe(registry(), Recipe(steps=[ok, bad]), RunContext())
    with pytest.raises(UsageError, match="Unknown engine"):
        prepare_recipe(
            registry(), Recipe(steps=[RecipeStep(task="denoise", engine="x")]), RunContext()
        )
    missing = EngineSpec(
        "denoise",
        "gone",
        "Gone",
        ShiftParams,
        run_shift,
        available=lambda ctx: Availability(False, "no model"),
    )
    with pytest.raises(EngineUnavailableError, match="no model"):
        prepare_recipe(
            Registry([SHIFT, missing]),
            Recipe(steps=[RecipeStep(task="denoise", engine="gone")]),
            RunContext(),
        )


# --- running ----------------------------------------------------------------------------------


def test_batch_applies_the_recipe_to_every_image(tmp_path: Path, rng: np.random.Generator) -> None:
    sources = photos(tmp_path / "in", 4, rng)
    plan = plan_batch([tmp_path / "in"], tmp_path / "out", task="denoise")
    steps = [
        RecipeStep(task="denoise", params={"amount": 0.1}),
        RecipeStep(task="denoise", params={"amount": 0.2}),
    ]
    events, summary = drain(
        run_batch(registry(), plan, settings(recipe=Recipe(steps=steps)), RunContext())
    )
    assert summary.count(ItemStatus.DONE) == 4
    assert sum(isinstance(e, ItemFinished) for e in events) == 4
    assert any(
        isinstance(e, ItemProgress) and e.progress.message.startswith("denoise: ") for e in events
    )
    for source, item in zip(sources, plan.items, strict=True):
        assert np.abs(load(item.output) - expected_shift(source, 0.3)).max() <= 1


def test_one_bad_file_does_not_stop_the_others(tmp_path: Path, rng: np.random.Generator) -> None:
    photos(tmp_path / "in", 3, rng)
    (tmp_path / "in" / "img01.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    png(tmp_path / "in" / "img03.png", np.zeros((16, 16, 3), np.uint8))  # the engine refuses it
    plan = plan_batch([tmp_path / "in"], tmp_path / "out", task="denoise")
    events, summary = drain(run_batch(registry(), plan, settings(), RunContext()))
    failed = {e.item.inputs[0].name: e for e in events if isinstance(e, ItemFailed)}
    assert set(failed) == {"img01.png", "img03.png"}
    assert failed["img01.png"].exit_code == 3 and failed["img03.png"].exit_code == 3
    assert "black" in failed["img03.png"].reason and "\n" not in failed["img01.png"].reason
    assert [s.status for s in summary.states] == [
        ItemStatus.DONE,
        ItemStatus.FAILED,
        ItemStatus.DONE,
        ItemStatus.FAILED,
    ]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "img00_denoise.png",
        "img02_denoise.png",
    ]


def test_retry_failed_runs_only_the_failed_items(tmp_path: Path, rng: np.random.Generator) -> None:
    photos(tmp_path / "in", 2, rng)
    black = png(tmp_path / "in" / "img02.png", np.zeros((16, 16, 3), np.uint8))
    plan = plan_batch([tmp_path / "in"], tmp_path / "out", task="denoise")
    _, summary = drain(run_batch(registry(), plan, settings(), RunContext()))
    retry = summary.failed_plan()
    assert [item.inputs[0] for item in retry.items] == [black.resolve()]
    png(black, np.full((16, 16, 3), 100, np.uint8))  # the photographer fixes the file
    events, again = drain(run_batch(registry(), retry, settings(), RunContext()))
    assert (
        again.count(ItemStatus.DONE) == 1 and sum(isinstance(e, ItemStarted) for e in events) == 1
    )


def test_closing_the_generator_cancels_and_leaves_only_complete_files(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    photos(tmp_path / "in", 6, rng, size=96)
    plan = plan_batch([tmp_path / "in"], tmp_path / "out", task="denoise")
    events = run_batch(registry(), plan, settings(), RunContext())
    started = 0
    for event in events:
        started += isinstance(event, ItemStarted)
        if started == 3 and isinstance(event, ItemProgress):
            break
    events.close()
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == 2  # the first, and the one being written when cancelled
    for path in written:
        assert load(path).shape == (96, 104, 3)
    assert leftovers(tmp_path / "out") == []


def test_resume_skips_done_items_and_redoes_missing_or_changed_ones(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    sources = photos(tmp_path / "in", 4, rng)
    plan = plan_batch([tmp_path / "in"], tmp_path / "out", task="denoise")
    drain(run_batch(registry(), plan, settings(), RunContext()))
    plan.items[1].output.unlink()
    png(sources[2], rng.integers(0, 200, (30, 30, 3), dtype=np.uint8))  # the input changed
    events, _ = drain(run_batch(registry(), plan, settings(resume=True), RunContext()))
    skipped = [e.item.inputs[0].name for e in events if isinstance(e, ItemSkipped)]
    redone = [e.item.inputs[0].name for e in events if isinstance(e, ItemFinished)]
    assert skipped == ["img00.png", "img03.png"] and redone == ["img01.png", "img02.png"]
    assert load(plan.items[2].output).shape == (30, 30, 3)


def test_resume_redoes_everything_when_the_recipe_changes(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    photos(tmp_path / "in", 2, rng)
    plan = plan_batch([tmp_path / "in"], tmp_path / "out", task="denoise")
    drain(run_batch(registry(), plan, settings(), RunContext()))
    other = Recipe(steps=[RecipeStep(task="denoise", params={"amount": 0.5})])
    _, summary = drain(
        run_batch(registry(), plan, settings(recipe=other, resume=True), RunContext())
    )
    assert summary.count(ItemStatus.SKIPPED) == 0 and summary.count(ItemStatus.DONE) == 2


def test_a_line_torn_by_a_crash_only_redoes_its_item(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    photos(tmp_path / "in", 3, rng)
    plan = plan_batch([tmp_path / "in"], tmp_path / "out", task="denoise")
    drain(run_batch(registry(), plan, settings(), RunContext()))
    manifest = tmp_path / "out" / MANIFEST_NAME
    manifest.write_bytes(manifest.read_bytes()[:-20])
    events, _ = drain(run_batch(registry(), plan, settings(resume=True), RunContext()))
    skipped = [e.item.inputs[0].name for e in events if isinstance(e, ItemSkipped)]
    redone = [e.item.inputs[0].name for e in events if isinstance(e, ItemFinished)]
    assert skipped == ["img00.png", "img01.png"] and redone == ["img02.png"]
    manifest.write_text("{ not a manifest at all")
    _, summary = drain(run_batch(registry(), plan, settings(resume=True), RunContext()))
    assert summary.count(ItemStatus.DONE) == 3


def test_outputs_of_an_earlier_batch_in_the_same_folder_are_not_inputs(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    photos(tmp_path, 2, rng)
    first = plan_batch([tmp_path], tmp_path, task="denoise")
    drain(run_batch(registry(), first, settings(), RunContext()))
    again = plan_batch([tmp_path], tmp_path, task="denoise")
    assert again.items == first.items


def test_inpaint_like_engines_need_their_mask(tmp_path: Path) -> None:
    needy = EngineSpec(
        "inpaint",
        "fill",
        "Fill",
        ShiftParams,
        run_shift,
        default=True,
        inputs=(EngineInput(MASK, required=True),),
    )
    recipe = Recipe(steps=[RecipeStep(task="inpaint")])
    with pytest.raises(UsageError, match="mask"):
        prepare_recipe(Registry([needy]), recipe, RunContext())
    assert prepare_recipe(Registry([needy]), recipe, RunContext(), given={"mask"})


def test_item_inputs_are_read_with_their_mask(tmp_path: Path, rng: np.random.Generator) -> None:
    from studio.engine.batch import read_item_inputs

    source = photos(tmp_path, 1, rng)[0]
    square = np.zeros((48, 56), np.uint8)
    square[10:20, 10:30] = 255
    mask = png(tmp_path / "mask.png", square)
    chosen = settings(extras={"mask": mask}, region=mask)
    inputs, region = read_item_inputs([source], chosen, {"mask": MASK}, {})
    assert isinstance(inputs.image, Image) and inputs.mask is not None
    assert inputs.mask.shape == (48, 56) and region is not None
    np.testing.assert_array_equal(region, square / 255.0)


def test_temporaries_a_killed_batch_left_are_removed(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    photos(tmp_path / "in", 1, rng)
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".img00_denoise.png.0a1b2c3d.part", out / ".studio-batch-x1y2.tmp"]
    unrelated = out / ".holiday.png.0a1b2c3d.part"
    for path in [*stale, unrelated]:
        path.write_bytes(b"half")
    plan = plan_batch([tmp_path / "in"], out, task="denoise")
    drain(run_batch(registry(), plan, settings(), RunContext()))
    assert not any(path.exists() for path in stale) and unrelated.exists()


def test_the_temporary_of_a_long_non_ascii_name_a_killed_batch_left_is_removed(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 252-byte output name (80 Japanese characters): its temporary is cut by bytes."""
    name = "写真" * 40
    png(tmp_path / "in" / f"{name}.png", rng.integers(0, 200, (16, 24, 3), dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    left: list[Path] = []

    def killed(output: object, path: Path) -> None:  # the write of the output, interrupted
        left.append(path)
        raise OSError("killed")

    with monkeypatch.context() as patched:
        patched.setitem(ENCODERS, "png", killed)
        with pytest.raises(BadInputError):
            write_image(Image(np.zeros((2, 2, 3), np.float32)), out / f"{name}_denoise.png")
    left[0].write_bytes(b"half")  # as a batch killed mid-write leaves it
    plan = plan_batch([tmp_path / "in"], out, task="denoise")
    drain(run_batch(registry(), plan, settings(), RunContext()))
    assert not left[0].exists() and (out / f"{name}_denoise.png").is_file()
