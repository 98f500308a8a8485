"""Engines declare their inputs: the CLI, the batch runner and `check_inputs` ask the
declaration, so an engine with a new kind of input runs without code changes."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.cli.main import main
from studio.core.errors import MissingInputError, UsageError
from studio.core.protocol import (
    EngineInput,
    EngineSpec,
    InputForm,
    InputKind,
    JobInputs,
    Missing,
    NoParams,
    OpRun,
    Progress,
    RunContext,
)
from studio.core.registry import Registry
from studio.engine import registry as engine_registry
from studio.engine.jobs import check_inputs
from studio.engine.registry import build_registry

REPO = Path(__file__).resolve().parents[2]
DEPTH = InputKind(
    "depth",
    InputForm.MASK,
    "Depth map",
    "grayscale depth, white = near",
    Missing(window="Paint the depth with the depth brush", cli="give --input depth=FILE"),
)


def _darken_far(inputs: JobInputs, params: NoParams, ctx: RunContext) -> OpRun:
    depth = inputs.array(DEPTH)
    assert depth is not None
    yield Progress(0, 1, "Darkening")
    return inputs.image.with_pixels(inputs.image.pixels * depth[..., None])


FOG = EngineSpec(
    "degrade",
    "fog",
    "Depth fog",
    NoParams,
    _darken_far,
    default=True,
    inputs=(EngineInput(DEPTH, required=True),),
)


def _png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


def _load(path: Path) -> np.ndarray:
    with PILImage.open(path) as image:
        return np.asarray(image)


@pytest.fixture
def fog_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_registry, "build_registry", lambda: Registry([FOG]))


def test_an_engine_with_a_new_input_kind_runs_from_the_cli(
    tmp_path: Path, fog_registry: None, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _png(tmp_path / "in" / "photo.png", np.full((12, 16, 3), 200, np.uint8))
    depth = np.zeros((12, 16), np.uint8)
    depth[:, 8:] = 255
    depth_file = _png(tmp_path / "depth.png", depth)
    out = tmp_path / "out.png"
    assert main(["run", "degrade", str(photo), "-o", str(out)]) == 2
    assert "Depth fog: give --input depth=FILE" in capsys.readouterr().err
    assert not out.exists()
    given = ["--input", f"depth={depth_file}"]
    assert main(["run", "degrade", str(photo), "-o", str(out), *given]) == 0
    result = _load(out)
    assert np.all(result[:, :8] == 0) and np.all(result[:, 8:] == 200)
    assert main(["batch", "degrade", str(photo.parent), "-o", str(tmp_path / "b"), *given]) == 0
    assert np.array_equal(_load(tmp_path / "b" / "photo_degrade.png"), result)


def test_an_input_no_engine_takes_is_a_usage_error(
    tmp_path: Path, fog_registry: None, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _png(tmp_path / "photo.png", np.full((12, 16, 3), 200, np.uint8))
    args = ["run", "degrade", str(photo), "-o", str(tmp_path / "out.png")]
    assert main([*args, "--input", f"height={photo}"]) == 2
    assert "takes an input called 'height'" in capsys.readouterr().err
    assert main([*args, "--input", "depth"]) == 2


def test_check_inputs_asks_the_declaration() -> None:
    with pytest.raises(MissingInputError) as missing:
        check_inputs(FOG, set())
    assert missing.value.window_text == "Paint the depth with the depth brush"
    assert str(missing.value) == "Depth fog: give --input depth=FILE"
    check_inputs(FOG, {"depth"})
    with pytest.raises(UsageError, match="takes one photo, not several"):
        check_inputs(FOG, {"depth", "brackets"})


def _engines_with_required_inputs() -> list[EngineSpec]:
    registry = build_registry()
    specs = [spec for task in registry.tasks() for spec in registry.engines(task)]
    return [s for s in specs if s.needs_any_input or any(use.required for use in s.inputs)]


@pytest.mark.parametrize("spec", _engines_with_required_inputs(), ids=lambda s: f"{s.task}/{s.id}")
def test_missing_inputs_are_explained_in_window_and_cli_words(spec: EngineSpec) -> None:
    with pytest.raises(MissingInputError) as missing:
        check_inputs(spec, set())
    window, cli = missing.value.window_text, str(missing.value)
    assert "--" not in window and window != cli
    assert cli.startswith(spec.name) and ("--" in cli or "at least two images" in cli)


def _task_name_comparisons(folder: Path) -> list[str]:
    """`x.task == "name"`-like comparisons of a task with a literal, as file:line."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            names = [
                s.attr if isinstance(s, ast.Attribute) else getattr(s, "id", "") for s in sides
            ]
            literal = any(isinstance(s, ast.Constant) and isinstance(s.value, str) for s in sides)
            if literal and "task" in names:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


@pytest.mark.parametrize("layer", ["ui", "cli"])
def test_the_window_and_the_cli_never_compare_a_task_name(layer: str) -> None:
    assert _task_name_comparisons(REPO / "studio" / layer) == []


def test_colorize_from_a_reference_photo_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    grey = _png(tmp_path / "grey.png", np.dstack([texture] * 3))
    colour = np.dstack([texture, texture // 2, texture // 4])  # orange, of the same texture
    reference = _png(tmp_path / "reference.png", colour)
    out = tmp_path / "out.png"
    assert main(["run", "colorize", str(grey), "-o", str(out)]) == 2
    error = capsys.readouterr().err
    assert all(flag in error for flag in ("--hints FILE", "--reference FILE", "--model FILE"))
    assert main(["run", "colorize", str(grey), "-o", str(out), "--reference", str(reference)]) == 0
    red, green, blue = (_load(out)[..., c].astype(float).mean() for c in range(3))
    assert red > green + 20 and green > blue + 10
