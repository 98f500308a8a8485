"""The shipped catalog is well-formed and recognises every file in ../shared/models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studio.core.errors import ModelError
from studio.core.protocol import TASKS
from studio.engine.models._catalog import (
    Digests,
    catalog,
    catalog_path,
    load_catalog,
    recognise,
    recommendations,
)
from studio.engine.models.store import file_digests
from tests.shared import shared_file

MANIFEST_ROW = re.compile(
    r"^\| (\S+) \| (\S+) : (\S+) \| (\w+) \| (\d+) \| ([0-9a-f]{64}) \| (.+) \|$"
)


def _manifest_rows() -> list[re.Match[str]]:
    manifest = shared_file("models", "MANIFEST.md")
    rows = [MANIFEST_ROW.match(line) for line in manifest.read_text().splitlines()]
    return [row for row in rows if row]


def test_every_entry_is_well_formed() -> None:
    entries = catalog()
    assert len(entries) >= 50
    for entry in entries:
        assert entry.task in TASKS
        assert entry.licence.strip()
        assert Path(entry.file).name == entry.file
        if entry.sha256:
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
        if entry.commercial_use is False:
            assert entry.licence != "unknown"


def test_catalog_covers_each_family_the_studio_supports() -> None:
    architectures = {entry.architecture for entry in catalog()}
    for family in (
        "LaMa",
        "MAT",
        "DnCNN",
        "FFDNet",
        "DRUNet",
        "SCUNet",
        "NAFNet",
        "Restormer",
        "DDColor",
        "TransformerNet",
        "CycleGAN",
        "ECCV16",
        "SIGGRAPH17",
        "Zero-DCE",
    ):
        assert family in architectures


def test_non_commercial_licences_are_flagged() -> None:
    flagged = {entry.id for entry in catalog() if entry.commercial_use is False}
    for entry in catalog():
        if "NC" in entry.licence.split("-") or entry.licence == "Academic Public License":
            assert entry.id in flagged
    assert {"mat-places-512", "zero-dce", "restormer-motion-deblurring"} <= flagged


@pytest.mark.realweights
def test_every_shared_model_file_is_in_the_catalog_by_sha256() -> None:
    rows = _manifest_rows()
    assert len(rows) >= 20
    by_sha = {entry.sha256: entry for entry in catalog() if entry.sha256}
    for row in rows:
        file, repo, _repo_path, _commit, size, sha256, _licence = row.groups()
        entry = by_sha.get(sha256)
        assert entry is not None, f"{file} is missing from the catalog"
        assert entry.size == int(size)
        assert entry.source == f"https://github.com/{repo}"
        if "NonCommercial" in _licence:
            assert entry.commercial_use is False


@pytest.mark.realweights
def test_shared_files_are_recognised_from_their_bytes() -> None:
    path = shared_file("models", "denoising", "kair_dncnn_25.pth")
    entry = recognise(file_digests(path))
    assert entry is not None and entry.id == "kair-dncnn-25"
    assert entry.mismatch(file_digests(path)) is None  # sha256, git blob and md5 all agree


def test_recognition_needs_every_authoritative_checksum_to_agree() -> None:
    entry = next(e for e in catalog() if e.id == "zero-dce")
    assert entry.sha256 and entry.md5 and entry.git_blob
    good = Digests(entry.size or 0, entry.sha256, entry.md5, entry.git_blob)
    assert entry.recognises(good)
    assert not entry.recognises(good._replace(md5="0" * 32))
    assert recognise(good._replace(sha256="0" * 64, md5="0" * 32, git_blob="0" * 40)) is None


def test_catalog_is_found_beside_the_package() -> None:
    assert catalog_path() == Path(__file__).resolve().parents[3] / "models" / "catalog.toml"


def test_invalid_catalog_is_refused_with_the_reason(tmp_path: Path) -> None:
    text = catalog_path().read_text(encoding="utf-8")
    broken = tmp_path / "catalog.toml"
    broken.write_text(text.replace('task = "hdr"', 'task = "sharpen"', 1), encoding="utf-8")
    with pytest.raises(ModelError, match="unknown task 'sharpen'"):
        load_catalog(broken)
    duplicated = text + text[text.index("[[model]]") :]
    broken.write_text(duplicated, encoding="utf-8")
    with pytest.raises(ModelError, match="duplicate id"):
        load_catalog(broken)


@pytest.mark.realweights
def test_every_address_and_checksum_is_stated_in_the_sources() -> None:
    """Nothing in the catalog is invented: each URL and checksum appears in the read sources."""
    sources = shared_file("design", "MODEL_SOURCES.md").read_text()
    sources += shared_file("models", "MANIFEST.md").read_text()
    sources += (catalog_path().parent / "SOURCES.md").read_text()
    sources += _expand_number_lists(sources)
    for entry in catalog():
        facts = [entry.sha256, entry.md5, entry.git_blob, entry.sha256_prefix, *entry.mirror_sha256]
        facts.append(entry.source.removeprefix("https://github.com/"))
        for fact in filter(None, facts):
            assert fact in sources, f"{entry.id}: {fact} is in none of the read sources"
        if entry.download_url:
            assert _url_is_stated(entry.download_url, sources), entry.id


def _expand_number_lists(text: str) -> str:
    """`scunet_color_15/25/50.pth` as written in the sources -> each file name on its own."""
    names = []
    for stem, numbers, suffix in re.findall(r"(\w+_)(\d+(?:/\d+)+)(\.pth)", text):
        names += [f"`{stem}{number}{suffix}`" for number in numbers.split("/")]
    return " ".join(names)


def _url_is_stated(url: str, sources: str) -> bool:
    """Verbatim, or a stated base (`.../releases/download/v1.0/<name>`) plus a stated file name."""
    if url in sources:
        return True
    base, name = url.rsplit("/", 1)
    elided = "…/" + url.split("/", 5)[-1]  # the sources write "…/releases/download/..."
    return (base in sources or elided in sources) and f"`{name}`" in sources


PHOTO_TASKS = ("inpaint", "denoise", "deblur", "colorize", "style", "hdr")


def test_recommended_set_has_one_commercial_checksummed_download_or_a_reason_per_task() -> None:
    found = {r.task: r for r in recommendations()}
    assert set(PHOTO_TASKS) <= set(found)
    for task in PHOTO_TASKS:
        entry = found[task].entry
        if entry is None:
            assert len(found[task].reason) > 40, f"{task}: say why no model qualifies"
            continue
        assert entry.task == task and entry.download_url and entry.checksums, entry.id
        assert entry.commercial_use is True and not entry.unsupported, entry.id
    assert found["inpaint"].entry is not None and found["inpaint"].entry.id == "lama-big-zip"


def test_a_non_commercial_model_cannot_be_recommended(tmp_path: Path) -> None:
    text = catalog_path().read_text(encoding="utf-8")
    start = text.index('id = "mat-places-512"')
    broken = tmp_path / "catalog.toml"
    broken.write_text(text[:start] + "recommended = true\n" + text[start:], encoding="utf-8")
    with pytest.raises(ModelError, match="recommended model needs commercial_use = true"):
        load_catalog(broken)


def test_two_recommendations_for_one_task_are_refused(tmp_path: Path) -> None:
    text = catalog_path().read_text(encoding="utf-8")
    start = text.index('id = "lama-big"\n')
    broken = tmp_path / "catalog.toml"
    broken.write_text(text[:start] + "recommended = true\n" + text[start:], encoding="utf-8")
    with pytest.raises(ModelError, match="inpaint: more than one recommended model"):
        load_catalog(broken)


def test_every_rank_names_the_figure_it_rests_on() -> None:
    ranked = [entry for entry in catalog() if entry.rank is not None]
    assert {entry.task for entry in ranked} >= {"inpaint", "denoise", "deblur", "colorize"}
    assert all(len(entry.rank_note) > 10 for entry in ranked)
    best = {e.task: e for e in sorted(ranked, key=lambda e: -(e.rank or 0))}
    assert best["inpaint"].architecture == "LaMa"
