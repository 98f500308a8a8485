"""Importing, recognising, refusing, verifying and removing installed models."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.core.errors import BadInputError, ModelError
from studio.core.paths import models_dir
from studio.engine import models
from studio.engine.models._catalog import catalog_entry
from studio.engine.neural.loader import load_model
from tests.engine.models.helpers import entry_for, save_tiny_dncnn, sha256_of
from tests.shared import shared_file


def _models_folder_files() -> list[str]:
    folder = models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_import_copies_indexes_and_learns_the_task(tiny_dncnn: Path) -> None:
    model = models.import_model(tiny_dncnn)
    assert model.task == "denoise" and model.architecture == "DnCNN"
    assert model.path.parent == models_dir()
    assert model.path.read_bytes() == tiny_dncnn.read_bytes()
    assert model.sha256 == sha256_of(tiny_dncnn)
    assert model.catalog_id is None and model.licence == "unknown"
    assert models.installed_models() == [model]
    index = json.loads((models_dir() / "index.json").read_text())
    assert index["models"][0]["id"] == model.id == "my_dncnn"
    assert load_model(model.path).architecture == "DnCNN"  # the installed copy loads


def test_safetensors_checkpoints_import_too(tmp_path: Path) -> None:
    path = save_tiny_dncnn(tmp_path / "net.safetensors", seed=3)
    model = models.import_model(path)
    assert model.file == "net.safetensors" and model.task == "denoise"


def test_importing_the_same_file_twice_is_idempotent(tiny_dncnn: Path, tmp_path: Path) -> None:
    first = models.import_model(tiny_dncnn)
    copy = tmp_path / "elsewhere" / "renamed.pth"
    copy.parent.mkdir()
    copy.write_bytes(tiny_dncnn.read_bytes())
    assert models.import_model(tiny_dncnn) == first
    assert models.import_model(copy) == first
    assert len(models.installed_models()) == 1
    assert _models_folder_files() == ["index.json", first.file]


def test_same_name_different_weights_get_distinct_ids_and_files(tmp_path: Path) -> None:
    a = models.import_model(save_tiny_dncnn(tmp_path / "a" / "net.pth", seed=1))
    b = models.import_model(save_tiny_dncnn(tmp_path / "b" / "net.pth", seed=2))
    assert a.id != b.id and a.file != b.file
    assert a.path.read_bytes() != b.path.read_bytes()


def test_damaged_install_is_repaired_by_importing_again(tiny_dncnn: Path) -> None:
    model = models.import_model(tiny_dncnn)
    model.path.write_bytes(b"truncated")
    again = models.import_model(tiny_dncnn)
    assert again.path.read_bytes() == tiny_dncnn.read_bytes()
    assert [m.id for m in models.installed_models()] == [again.id]


def test_a_file_matching_the_catalog_takes_its_name_licence_and_params(
    tiny_dncnn: Path, catalog_of: Callable[..., None]
) -> None:
    catalog_of(entry_for(tiny_dncnn.read_bytes(), task="deblur"))
    model = models.import_model(tiny_dncnn)
    assert (model.id, model.catalog_id) == ("tiny-dncnn", "tiny-dncnn")
    assert model.name == "Tiny DnCNN (test)"
    assert model.file == "tiny_dncnn.pth"
    assert model.licence == "CC-BY-NC-4.0" and model.commercial_use is False
    assert model.params == {"strength": 0.5}
    assert model.task == "deblur" and "denoise" in model.tasks  # the catalog knows best


def test_md5_only_catalog_entries_recognise_files(
    tiny_dncnn: Path, catalog_of: Callable[..., None]
) -> None:
    import hashlib

    md5 = hashlib.md5(tiny_dncnn.read_bytes()).hexdigest()
    catalog_of(entry_for(b"", sha256="unknown", size="unknown", md5=md5))
    assert models.import_model(tiny_dncnn).catalog_id == "tiny-dncnn"


@pytest.mark.realweights
@pytest.mark.parametrize(
    ("relative", "catalog_id"),
    [
        ("denoising/kair_dncnn_25.pth", "kair-dncnn-25"),
        ("hdr/zero_dce_Epoch99.pth", "zero-dce"),
        ("style_transfer/tnet_nc8_candy.model", "tnet-nc8-candy"),
    ],
)
def test_published_files_get_their_catalog_identity(relative: str, catalog_id: str) -> None:
    path = shared_file("models", *relative.split("/"))
    model = models.import_model(path)
    entry = catalog_entry(catalog_id)
    assert entry is not None
    assert (model.id, model.name, model.licence) == (entry.id, entry.name, entry.licence)
    assert model.commercial_use == entry.commercial_use
    assert (model.task, model.architecture) == (entry.task, entry.architecture)
    assert model.path.name == entry.file


@pytest.mark.realweights
def test_every_shared_model_imports_with_the_catalogs_architecture() -> None:
    folder = shared_file("models")
    results = models.import_folder(folder)
    assert len(results) >= 20
    for result in results:
        assert result.error is None, f"{result.path}: {result.error}"
        assert result.model is not None and result.model.catalog_id is not None
        entry = catalog_entry(result.model.catalog_id)
        assert entry is not None and result.model.architecture == entry.architecture


def test_garbage_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    garbage = tmp_path / "weights.pth"
    garbage.write_bytes(b"\x00not a checkpoint\xff" * 50)
    with pytest.raises(ModelError, match=r"weights\.pth"):
        models.import_model(garbage)
    assert models.installed_models() == []
    assert [f for f in _models_folder_files() if f != "index.json"] == []


def test_unknown_architecture_is_refused_with_the_reason(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "mystery.pth"
    torch.save({"encoder.weird.weight": torch.zeros(3, 5), "head.bias": torch.zeros(2)}, path)
    with pytest.raises(ModelError, match="unsupported architecture"):
        models.import_model(path)
    assert models.installed_models() == []


class _CreatesFile:
    """Unpickling this object opens (creates) a file: code execution hidden in a checkpoint."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("layout", ["torch-zip", "legacy-pickle"])
def test_a_pickle_that_would_run_code_is_refused_without_running_it(
    tmp_path: Path, layout: str
) -> None:
    import torch

    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    payload = {"0.weight": torch.zeros(1), "trap": _CreatesFile(marker)}
    if layout == "torch-zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))
    assert not marker.exists()
    with pytest.raises(ModelError, match="pickle needs code execution: refused"):
        models.import_model(path)
    assert not marker.exists()
    assert models.installed_models() == []


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError):
        models.import_model(tmp_path / "nope.pth")


def test_import_folder_imports_each_file_on_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    save_tiny_dncnn(folder / "good.pth", seed=1)
    save_tiny_dncnn(folder / "nested" / "also_good.safetensors", seed=2)
    (folder / "broken.pth").write_bytes(b"junk")
    (folder / "notes.txt").write_text("not a model")
    save_tiny_dncnn(folder / ".cache" / "hidden.pth", seed=4)
    results = models.import_folder(folder)
    outcome = {r.path.name: (r.model is not None, r.error is not None) for r in results}
    assert outcome == {
        "also_good.safetensors": (True, False),
        "broken.pth": (False, True),
        "good.pth": (True, False),
    }
    assert len(models.installed_models()) == 2


def test_verify_detects_a_corrupted_and_a_missing_file(tmp_path: Path) -> None:
    kept = models.import_model(save_tiny_dncnn(tmp_path / "kept.pth", seed=1))
    damaged = models.import_model(save_tiny_dncnn(tmp_path / "damaged.pth", seed=2))
    gone = models.import_model(save_tiny_dncnn(tmp_path / "gone.pth", seed=3))
    data = bytearray(damaged.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.path.write_bytes(bytes(data))
    gone.path.unlink()
    results = {r.model.id: (r.ok, r.reason) for r in models.verify()}
    assert results[kept.id][0] is True
    assert results[damaged.id] == (
        False,
        "sha256 differs from the index: the file was changed or is damaged",
    )
    assert results[gone.id][0] is False and "missing" in results[gone.id][1]


def test_verify_checks_the_catalog_checksums_too(
    tiny_dncnn: Path, catalog_of: Callable[..., None]
) -> None:
    import hashlib

    data = tiny_dncnn.read_bytes()
    catalog_of(entry_for(data, md5=hashlib.md5(data).hexdigest()))
    models.import_model(tiny_dncnn)
    (result,) = models.verify()
    assert result.ok and "sha256" in result.reason and "md5" in result.reason
    catalog_of(entry_for(data, md5="0" * 32))  # the catalog now disagrees with the file
    (result,) = models.verify()
    assert not result.ok and "md5" in result.reason


def test_remove_deletes_the_file_and_the_record(tiny_dncnn: Path) -> None:
    model = models.import_model(tiny_dncnn)
    assert models.remove(model.id) == model
    assert not model.path.exists()
    assert models.installed_models() == []
    with pytest.raises(BadInputError, match="No installed model"):
        models.remove(model.id)


def test_model_file_resolves_paths_ids_and_catalog_ids(
    tiny_dncnn: Path, catalog_of: Callable[..., None]
) -> None:
    assert models.model_file(str(tiny_dncnn)) == tiny_dncnn
    catalog_of(entry_for(tiny_dncnn.read_bytes()))
    with pytest.raises(BadInputError, match="install it first"):
        models.model_file("tiny-dncnn")
    model = models.import_model(tiny_dncnn)
    assert models.model_file("tiny-dncnn") == model.path


def test_adain_decoder_brings_its_vgg_encoder(tmp_path: Path) -> None:
    import torch

    from studio.engine.neural.arches.adain import AdaIN

    network = AdaIN()
    source = tmp_path / "adain"
    source.mkdir()
    torch.save(network.decoder.state_dict(), source / "decoder.pth")
    torch.save(network.vgg.state_dict(), source / "vgg_normalised.pth")

    (decoder, encoder) = models.import_folder(source)
    assert decoder.model is not None and decoder.model.architecture == "AdaIN"
    assert encoder.model == decoder.model  # the encoder is recognised as its companion
    model = decoder.model
    assert set(model.companions) == {"vgg_normalised.pth"}
    assert load_model(model.path).architecture == "AdaIN"  # loads from the models folder
    assert all(r.ok for r in models.verify())

    models.remove(model.id)
    assert _models_folder_files() == ["index.json"]


def test_a_file_already_in_the_models_folder_is_indexed_in_place() -> None:
    dropped = save_tiny_dncnn(models_dir() / "dropped.pth")
    model = models.import_model(dropped)
    assert model.path == dropped
    assert _models_folder_files() == ["dropped.pth", "index.json"]


def test_concurrent_imports_all_reach_the_index(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = [save_tiny_dncnn(tmp_path / f"net{i}.pth", seed=i) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        imported = list(pool.map(models.import_model, paths))
    assert sorted(m.id for m in models.installed_models()) == sorted(m.id for m in imported)
    assert "index.lock" not in _models_folder_files()
