"""Planning a batch: which inputs make which outputs, in a stable order, never overwriting
an input."""

from __future__ import annotations

import os
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import UsageError
from studio.core.imageio import (
    WRITABLE_EXTENSIONS,
    is_image_file,
)
from studio.core.paths import (
    require_short_name,
    resolved,
)
from studio.engine.batch.journal import Manifest

DEFAULT_TEMPLATE = "{stem}_{task}"
TEMPLATE_FIELDS = ("stem", "task", "engine")
MAX_TEMPLATE_LENGTH = 100


@dataclass(frozen=True)
class BatchItem:
    """One unit of work: its input files (several for HDR brackets) and its output file."""

    inputs: tuple[Path, ...]
    output: Path

    @property
    def label(self) -> str:
        return self.inputs[0].name if len(self.inputs) == 1 else self.inputs[0].parent.name


@dataclass(frozen=True)
class BatchPlan:
    out_dir: Path
    items: tuple[BatchItem, ...]

    def subset(self, items: Iterable[BatchItem]) -> BatchPlan:
        return BatchPlan(self.out_dir, tuple(items))


def output_suffix(fmt: str | None, source: Path) -> str:
    """The output extension: `fmt` ('png', '.tif'...) or the source's own."""
    suffix = "." + fmt.lower().lstrip(".") if fmt else source.suffix.lower()
    if suffix in WRITABLE_EXTENSIONS:
        return suffix
    if fmt:
        choices = ", ".join(sorted(ext.lstrip(".") for ext in WRITABLE_EXTENSIONS))
        raise UsageError(f"Cannot write {fmt!r} files: use one of {choices}")
    return ".tif"


def check_template(template: str) -> None:
    """Raise `UsageError` unless `template` is a short plain name of known ``{field}``s only."""
    if len(template) > MAX_TEMPLATE_LENGTH:
        raise UsageError(f"The name template is over {MAX_TEMPLATE_LENGTH} characters long")
    try:
        fields = [
            (n, spec, conv)
            for _, n, spec, conv in string.Formatter().parse(template)
            if n is not None
        ]
    except ValueError as err:
        raise UsageError(f"Bad name template {template!r}: {err}") from None
    if any(spec or conversion for _, spec, conversion in fields):
        raise UsageError(f"The name template {template!r} may use {{field}} only, no format")
    unknown = {name for name, _, _ in fields} - set(TEMPLATE_FIELDS)
    if unknown:
        known = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
        raise UsageError(f"Unknown field {sorted(unknown)[0]!r} in the name; use {known}")
    if "/" in template or "\\" in template or not template.strip():
        raise UsageError(f"The name template {template!r} must be a plain file name")


def plan_batch(
    sources: Sequence[Path],
    out_dir: Path,
    *,
    task: str,
    engine: str = "",
    template: str = DEFAULT_TEMPLATE,
    fmt: str | None = None,
    recursive: bool = False,
    group_by_folder: bool = False,
    avoid: Sequence[Path] = (),
) -> BatchPlan:
    """Plan outputs in `out_dir` for the images among `sources` (files and folders).

    Folders contribute their supported images (subfolders too when `recursive`), sorted by
    path; files are taken as given. Outputs mirror the subfolders found by recursion, are named
    from `template` and never equal an input or a file in `avoid` (the mask, kernel...): clashes
    get a suffix ``_2``, ``_3``... With
    `group_by_folder` (HDR brackets) each folder's images form one item named after the folder.
    """
    check_template(template)
    out_dir = resolved(out_dir)
    found = _collect(sources, out_dir, recursive)
    groups: list[tuple[Path, tuple[Path, ...], str]] = []
    if group_by_folder:
        by_folder: dict[Path, list[Path]] = {}
        roots: dict[Path, Path] = {}
        for root, path in found:
            by_folder.setdefault(path.parent, []).append(path)
            roots.setdefault(path.parent, root)
        for folder, paths in by_folder.items():
            rel = folder.parent.relative_to(roots[folder]) if folder != roots[folder] else Path()
            groups.append((rel, tuple(paths), folder.name))
    else:
        groups = [(path.parent.relative_to(root), (path,), path.stem) for root, path in found]
    taken = {_key(path) for _, path in found} | {_key(resolved(path)) for path in avoid}
    items = []
    for rel, inputs, stem in groups:
        name = template.format(stem=stem, task=task, engine=engine)
        suffix = output_suffix(fmt, inputs[0])
        output = out_dir / rel / f"{name}{suffix}"
        counter = 2
        while _key(output) in taken:
            output = out_dir / rel / f"{name}_{counter}{suffix}"
            counter += 1
        taken.add(_key(output))
        require_short_name(output)
        items.append(BatchItem(inputs, output))
    return BatchPlan(out_dir, tuple(items))


def _key(path: Path) -> str:
    """Clash key: the same on case-insensitive file systems too."""
    return os.path.normcase(str(path)).casefold()


def _collect(sources: Sequence[Path], out_dir: Path, recursive: bool) -> list[tuple[Path, Path]]:
    """(root, file) pairs, de-duplicated, in the order given, folders sorted inside."""
    previous_outputs = {_key(out_dir / rel) for rel in Manifest.load(out_dir).entries}
    seen: set[Path] = set()
    found = []
    for source in sources:
        source = resolved(source)
        if source.is_dir():
            pairs = [(source, path) for path in _scan(source, recursive, out_dir)]
            pairs = [p for p in pairs if _key(p[1]) not in previous_outputs]
        elif source.exists():
            pairs = [(source.parent, source)]
        else:
            raise UsageError(f"No such file or folder: {source}")
        for root, path in pairs:
            if path not in seen:
                seen.add(path)
                found.append((root, path))
    return found


def _scan(folder: Path, recursive: bool, out_dir: Path) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    paths = []
    for path in pattern:
        rel = path.relative_to(folder)
        hidden = any(part.startswith(".") for part in rel.parts)
        inside_out_dir = out_dir != folder and path.is_relative_to(out_dir)
        if not hidden and not inside_out_dir and path.is_file() and is_image_file(path):
            paths.append(path)
    return sorted(paths, key=lambda path: path.relative_to(folder).parts)
