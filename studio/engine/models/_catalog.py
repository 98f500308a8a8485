"""The catalog of models Studio knows (`models/catalog.toml`), validated on load.

The catalog ships beside the package: in a source checkout or editable install it is read from
`<repo>/models/catalog.toml`; a wheel installs it as data into `<prefix>/share/studio/models/`.
"""

from __future__ import annotations

import re
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Annotated, Any, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

import studio
from studio.core.errors import ModelError
from studio.core.protocol import TASKS

CATALOG_NAME = "catalog.toml"
MODEL_SUFFIXES = (".pth", ".pt", ".ckpt", ".model", ".bin", ".safetensors", ".zip")
UNKNOWN = "unknown"


def _unknown_is_none(value: Any) -> Any:
    return None if value == UNKNOWN else value


def _hex(length: int | tuple[int, int]) -> AfterValidator:
    low, high = (length, length) if isinstance(length, int) else length
    pattern = re.compile(f"[0-9a-f]{{{low},{high}}}")

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"expected {low}-{high} lowercase hex digits")
        return value

    return AfterValidator(check)


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value


Sha256 = Annotated[str, _hex(64)]
Unknowable = BeforeValidator(_unknown_is_none)
Url = Annotated[str, AfterValidator(_url)]
ParamValue = bool | int | float | str


class Checksum(NamedTuple):
    """One checksum of a file: `kind` is sha256, git-blob, md5 or sha256-prefix."""

    kind: str
    value: str


class Digests(NamedTuple):
    """What Studio computes of a file in one pass, to verify and recognise it."""

    size: int
    sha256: str
    md5: str
    git_blob: str

    def has(self, checksum: Checksum) -> bool:
        if checksum.kind == "sha256-prefix":
            return self.sha256.startswith(checksum.value)
        field = {"sha256": self.sha256, "git-blob": self.git_blob, "md5": self.md5}
        return field[checksum.kind] == checksum.value


class CatalogEntry(BaseModel):
    """One published checkpoint. `None` in a field means the catalog says "unknown"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(min_length=1)
    task: str
    architecture: str = Field(min_length=1)
    file: str
    size: Annotated[Annotated[int, Field(gt=0)] | None, Unknowable]
    sha256: Annotated[Sha256 | None, Unknowable]
    md5: Annotated[str, _hex(32)] | None = None
    sha256_prefix: Annotated[str, _hex((8, 63))] | None = None
    git_blob: Annotated[str, _hex(40)] | None = None
    mirror_sha256: tuple[Sha256, ...] = ()
    checksum_note: str = ""
    licence: str = Field(min_length=1)
    commercial_use: bool | None = None
    licence_note: str = ""
    source: Url
    source_path: str | None = None
    source_commit: Annotated[str, _hex((7, 40))] | None = None
    download_url: Url | None = None
    url_note: str = ""
    notes: str = ""
    params: dict[str, ParamValue] = Field(default_factory=dict)
    companions: tuple[str, ...] = ()
    unsupported: str = ""
    rank: Annotated[int, Field(ge=1)] | None = None
    rank_note: str = ""
    recommended: bool = False

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
        return task

    @field_validator("file")
    @classmethod
    def _plain_model_file(cls, name: str) -> str:
        if "/" in name or "\\" in name or not name.lower().endswith(MODEL_SUFFIXES):
            raise ValueError(f"must be a plain file name ending in one of {MODEL_SUFFIXES}")
        return name

    @model_validator(mode="after")
    def _licence_flag_consistent(self) -> CatalogEntry:
        if "NC" in self.licence.split("-") and self.commercial_use is not False:
            raise ValueError("a non-commercial licence needs commercial_use = false")
        return self

    @model_validator(mode="after")
    def _recommendable(self) -> CatalogEntry:
        if self.rank is not None and not self.rank_note:
            raise ValueError("a rank needs its rank_note (the published figure it rests on)")
        if self.recommended:
            lacking = [
                what
                for what, missing in (
                    ("commercial_use = true", self.commercial_use is not True),
                    ("a download_url", self.download_url is None),
                    ("a checksum", not self.checksums),
                    ("no unsupported note", bool(self.unsupported)),
                )
                if missing
            ]
            if lacking:
                raise ValueError(f"a recommended model needs {', '.join(lacking)}")
        return self

    @property
    def checksums(self) -> list[Checksum]:
        """The authoritative checksums, strongest first (mirror values are not among them)."""
        pairs = [
            ("sha256", self.sha256),
            ("git-blob", self.git_blob),
            ("md5", self.md5),
            ("sha256-prefix", self.sha256_prefix),
        ]
        return [Checksum(kind, value) for kind, value in pairs if value]

    def mismatch(self, digests: Digests) -> str | None:
        """Why `digests` contradict this entry's checksums, or None when none does."""
        for checksum in self.checksums:
            if not digests.has(checksum):
                return f"{checksum.kind} differs from the catalog's for {self.id}"
        return None

    def recognises(self, digests: Digests) -> bool:
        """The file is this entry: no checksum contradicts it and at least one matches."""
        if not self.checksums and not self.mirror_sha256:
            return False
        if self.mismatch(digests) is not None:
            return False
        return bool(self.checksums) or digests.sha256 in self.mirror_sha256

    @property
    def commercial_use_text(self) -> str:
        return {True: "yes", False: "no", None: UNKNOWN}[self.commercial_use]


class _CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(alias="schema", ge=1, le=1)
    no_recommendation: dict[str, str] = Field(default_factory=dict)
    model: list[CatalogEntry]

    @model_validator(mode="after")
    def _unique(self) -> _CatalogFile:
        for label, values in (
            ("id", [entry.id for entry in self.model]),
            ("sha256", [entry.sha256 for entry in self.model if entry.sha256]),
        ):
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"duplicate {label}: {', '.join(duplicates)}")
        ids = {entry.id for entry in self.model}
        for entry in self.model:
            missing = set(entry.companions) - ids
            if missing:
                raise ValueError(f"{entry.id}: unknown companions {', '.join(sorted(missing))}")
        return self

    @model_validator(mode="after")
    def _one_recommendation_per_task(self) -> _CatalogFile:
        for task in {entry.task for entry in self.model}:
            chosen = [e.id for e in self.model if e.task == task and e.recommended]
            if len(chosen) > 1:
                raise ValueError(f"{task}: more than one recommended model: {', '.join(chosen)}")
            if chosen and task in self.no_recommendation:
                raise ValueError(f"{task}: both a recommended model and no_recommendation")
            if not chosen and task not in self.no_recommendation:
                raise ValueError(f"{task}: no recommended model and no no_recommendation reason")
        return self


def catalog_path() -> Path:
    """The shipped catalog: beside the package in a checkout, or in `<prefix>/share/studio`."""
    candidates = [
        Path(studio.__file__).resolve().parent.parent / "models" / CATALOG_NAME,
        Path(sys.prefix) / "share" / "studio" / "models" / CATALOG_NAME,
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise ModelError(
        "The model catalog is missing (looked in " + ", ".join(map(str, candidates)) + ")"
    )


def load_catalog(path: Path) -> list[CatalogEntry]:
    """Parse and validate one catalog file; ModelError says what is wrong with it."""
    return _load(path).model


def _load(path: Path) -> _CatalogFile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return _CatalogFile.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError, ValidationError) as err:
        raise ModelError(f"The model catalog {path} is invalid: {err}") from None


@cache
def _shipped_file() -> _CatalogFile:
    return _load(catalog_path())


def _shipped() -> tuple[CatalogEntry, ...]:
    return tuple(_shipped_file().model)


class Recommendation(NamedTuple):
    """A task's recommended model, or why none qualifies (`entry` None, `reason` set)."""

    task: str
    entry: CatalogEntry | None
    reason: str


def recommendations(task: str | None = None) -> list[Recommendation]:
    """Per task (catalog order), the recommended model or the reason there is none."""
    entries = _shipped()
    tasks = list(dict.fromkeys(entry.task for entry in entries))
    reasons = _shipped_file().no_recommendation
    found = []
    for name in tasks if task is None else [task]:
        chosen = next((e for e in entries if e.task == name and e.recommended), None)
        reason = "" if chosen else reasons.get(name, "no model in the catalog for this task")
        found.append(Recommendation(name, chosen, reason))
    return found


def best_rank(catalog_ids: list[str], task: str) -> CatalogEntry | None:
    """The best-ranked catalog entry of `task` among `catalog_ids` (ties: catalog order)."""
    ranked = [
        entry
        for entry in _shipped()
        if entry.id in catalog_ids and entry.task == task and entry.rank is not None
    ]
    return min(ranked, key=lambda entry: entry.rank or 0, default=None)


def catalog() -> list[CatalogEntry]:
    """Every model Studio knows, in catalog order."""
    return list(_shipped())


def catalog_entry(model_id: str) -> CatalogEntry | None:
    return next((entry for entry in _shipped() if entry.id == model_id), None)


def companion_of(model_id: str) -> CatalogEntry | None:
    """The entry that loads `model_id`'s file from beside its own, if any."""
    return next((entry for entry in _shipped() if model_id in entry.companions), None)


def recognise(digests: Digests) -> CatalogEntry | None:
    """The catalog entry a file with these digests is, if any."""
    return next((entry for entry in _shipped() if entry.recognises(digests)), None)
