"""The best installed engine is its task's default; a pin or `--engine` picks another."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.cli.main import main
from studio.engine import models
from studio.engine.models.defaults import pin_default, pinned_defaults
from studio.engine.registry import build_registry
from tests.engine.models.helpers import entry_for

BUILT_IN = "cbm3d"


def _default(task: str = "denoise") -> tuple[str, str]:
    spec = build_registry().get(task)
    return spec.id, spec.default_reason


def _install_ranked(tiny_dncnn: Path, catalog_of: Callable[..., None], rank: int | None) -> str:
    fields = {"rank": rank, "rank_note": "a published figure"} if rank else {}
    catalog_of(entry_for(tiny_dncnn.read_bytes(), **fields))
    return models.import_model(tiny_dncnn).id


def test_built_in_leads_until_a_ranked_model_is_installed(
    tiny_dncnn: Path, catalog_of: Callable[..., None]
) -> None:
    assert _default()[0] == BUILT_IN
    installed = _install_ranked(tiny_dncnn, catalog_of, rank=1)
    engine, reason = _default()
    assert engine == installed
    assert "rank 1" in reason and "a published figure" in reason
    assert [spec.id for spec in build_registry().engines("denoise") if spec.default] == [engine]


def test_an_unranked_model_does_not_take_the_lead(
    tiny_dncnn: Path, catalog_of: Callable[..., None]
) -> None:
    _install_ranked(tiny_dncnn, catalog_of, rank=None)
    assert _default()[0] == BUILT_IN


def test_pin_wins_over_rank_and_clearing_it_restores_the_rank(
    tiny_dncnn: Path, catalog_of: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    installed = _install_ranked(tiny_dncnn, catalog_of, rank=1)
    assert main(["models", "default", "denoise", "nlm"]) == 0
    assert pinned_defaults() == {"denoise": "nlm"}
    assert _default() == ("nlm", "you made it the default")
    assert main(["models", "default", "denoise", "--clear"]) == 0
    assert _default()[0] == installed
    assert main(["models", "default", "denoise", "no-such-engine"]) == 2
    capsys.readouterr()


def test_a_pin_to_a_removed_engine_is_ignored(
    tiny_dncnn: Path, catalog_of: Callable[..., None]
) -> None:
    installed = _install_ranked(tiny_dncnn, catalog_of, rank=1)
    pin_default("denoise", installed)
    models.remove(installed)
    assert _default()[0] == BUILT_IN


def _photo(folder: Path) -> Path:
    rng = np.random.default_rng(4)
    path = folder / "photo.png"
    PILImage.fromarray((rng.random((24, 24, 3)) * 255).astype(np.uint8)).save(path)
    return path


def test_cli_runs_the_ranked_default_and_engine_overrides_it(
    tiny_dncnn: Path,
    catalog_of: Callable[..., None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    installed = _install_ranked(tiny_dncnn, catalog_of, rank=1)
    photo = _photo(tmp_path)
    capsys.readouterr()
    assert main(["run", "denoise", str(photo), "-o", str(tmp_path / "a.png")]) == 0
    assert f"denoise/{installed} " in capsys.readouterr().out
    assert (
        main(["run", "denoise", str(photo), "-o", str(tmp_path / "b.png"), "--engine", "nlm"]) == 0
    )
    assert "denoise/nlm " in capsys.readouterr().out


def test_engines_listing_says_why_the_default_leads(
    tiny_dncnn: Path, catalog_of: Callable[..., None], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["engines", "denoise"]) == 0
    assert "default: Studio's built-in default" in capsys.readouterr().out
    _install_ranked(tiny_dncnn, catalog_of, rank=1)
    assert main(["engines", "denoise"]) == 0
    assert "default: the best installed denoise model (rank 1" in capsys.readouterr().out
