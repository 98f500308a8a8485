"""`studio models list|import|verify|remove|download`: the model manager on the command line.

Exit codes: 0 ok, 2 usage, 3 bad input (missing path, unknown id), 4 model problem
(refused file, failed check, failed download).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from studio.core.errors import BadInputError, ModelError, StudioError, UsageError
from studio.core.paths import models_dir
from studio.core.protocol import TASKS
from studio.engine import models
from studio.engine.models import defaults

OK, BAD_INPUT, MODEL_PROBLEM = 0, BadInputError.exit_code, ModelError.exit_code


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `models` and its actions to the `studio` command's sub-parsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "models",
        help="list, import, verify, remove and download models",
        description=(
            "Manage the models in your models folder. Nothing is downloaded unless you run "
            "`studio models download`."
        ),
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[common], help="installed models")
    listing.add_argument("--catalog", action="store_true", help="every model Studio knows")
    listing.add_argument(
        "--recommended",
        action="store_true",
        help="with --catalog: only the recommended model of each task, or why there is none",
    )

    importing = actions.add_parser(
        "import", parents=[common], help="copy model files (or folders of them) into the folder"
    )
    importing.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    actions.add_parser("verify", parents=[common], help="check installed files' checksums")

    removing = actions.add_parser("remove", parents=[common], help="delete an installed model")
    removing.add_argument("id", metavar="ID")

    downloading = actions.add_parser(
        "download", parents=[common], help="download a catalog model (resumable, verified)"
    )
    downloading.add_argument("id", metavar="ID", nargs="?")
    downloading.add_argument(
        "--recommended",
        action="store_true",
        help="download the recommended model of every task (or of --task) instead of one ID",
    )
    downloading.add_argument("--task", choices=TASKS, help="with --recommended: only this task")
    downloading.add_argument("--url", help="download from this address instead of the catalog's")
    downloading.add_argument(
        "--allow-unverified",
        action="store_true",
        help="accept a model the catalog has no checksum for",
    )
    downloading.add_argument(
        "--to",
        type=Path,
        metavar="DIR",
        help="only download and verify into DIR (e.g. for an offline bundle); do not install",
    )
    pinning = actions.add_parser(
        "default", parents=[common], help="make an engine its task's default (or --clear)"
    )
    pinning.add_argument("task", choices=TASKS, metavar="TASK")
    pinning.add_argument("engine", nargs="?", metavar="ENGINE", help="an id from `studio engines`")
    pinning.add_argument(
        "--clear", action="store_true", help="drop the pin: the best installed model leads again"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Run one `studio models` action; StudioErrors propagate to `studio`'s error handling."""
    action = {
        "list": _list,
        "import": _import,
        "verify": _verify,
        "remove": _remove,
        "download": _download,
        "default": _default,
    }[args.models_action]
    return action(args)


def _emit(data: dict[str, Any]) -> None:
    print(json.dumps(data, default=str), flush=True)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _licence(licence: str, commercial_use: bool | None) -> str:
    return f"{licence}, NOT for commercial use" if commercial_use is False else licence


def _size(size: int | None) -> str:
    return "?" if size is None else f"{size / 2**20:.1f} MiB"


# ---------------------------------------------------------------- list


def _list(args: argparse.Namespace) -> int:
    if args.recommended and not args.catalog:
        raise UsageError("--recommended lists catalog models: use it with --catalog")
    if args.catalog:
        return _list_recommended(args.json) if args.recommended else _list_catalog(args.json)
    installed = models.installed_models()
    if args.json:
        _emit({"models": [model.model_dump(mode="json") for model in installed]})
        return OK
    if not installed:
        print(f"No models installed in {models_dir()}. Add one with `studio models import PATH`.")
    for model in installed:
        print(_installed_line(model))
    return OK


def _installed_line(model: models.InstalledModel) -> str:
    licence = _licence(model.licence, model.commercial_use)
    return (
        f"{model.id:<30} {model.task:<9} {model.architecture:<20} {_size(model.size):>10}  "
        f"{model.name} [{licence}]"
    )


def _list_catalog(as_json: bool) -> int:
    installed = {m.catalog_id for m in models.installed_models() if m.catalog_id}
    entries = models.catalog()
    if as_json:
        rows = [{**e.model_dump(mode="json"), "installed": e.id in installed} for e in entries]
        _emit({"catalog": rows})
        return OK
    for entry in entries:
        mark = "*" if entry.id in installed else " "
        how = "n/a" if entry.unsupported else "download" if entry.download_url else "import"
        licence = _licence(entry.licence, entry.commercial_use)
        rank = f"#{entry.rank}" if entry.rank else ""
        print(
            f"{mark} {entry.id:<32} {entry.task:<9} {entry.architecture:<20} {how:<8} {rank:<3} "
            f"{entry.name} [{licence}]"
        )
    print(
        "(* installed; import = no direct download address, get the file from its source; "
        "n/a = Studio cannot load it; #N = rank within its task, the best installed leads)"
    )
    return OK


def _list_recommended(as_json: bool) -> int:
    installed = {m.catalog_id for m in models.installed_models() if m.catalog_id}
    found = models.recommendations()
    if as_json:
        rows = [
            {
                "task": r.task,
                "model": r.entry.model_dump(mode="json") if r.entry else None,
                "installed": bool(r.entry and r.entry.id in installed),
                "reason": r.reason,
            }
            for r in found
        ]
        _emit({"recommended": rows})
        return OK
    for recommendation in found:
        task, model = recommendation.task, recommendation.entry
        if model is None:
            print(f"  {task:<9} none qualifies: {recommendation.reason}")
            continue
        mark = "*" if model.id in installed else " "
        print(
            f"{mark} {task:<9} {model.id:<24} {_size(model.size):>10}  {model.name} "
            f"[{_licence(model.licence, model.commercial_use)}]"
        )
    known = [r.entry.size for r in found if r.entry and r.entry.size]
    unknown = sum(1 for r in found if r.entry and not r.entry.size)
    total = f"{sum(known) / 2**20:.0f} MiB" + (f" + {unknown} of unknown size" if unknown else "")
    print(f"(* installed; all together {total}: `studio models download --recommended`)")
    return OK


# ---------------------------------------------------------------- import


def _import(args: argparse.Namespace) -> int:
    results: list[models.ImportResult] = []
    for path in args.paths:
        if path.is_dir():
            found = models.import_folder(path)
            if not found:
                error = BadInputError(f"No model files in {path}")
                found = [models.ImportResult(path, None, error)]
            results += found
        else:
            results.append(_import_one(path))
    _report_imports(results, args.json)
    codes = [result.error.exit_code for result in results if result.error is not None]
    return BAD_INPUT if BAD_INPUT in codes else MODEL_PROBLEM if codes else OK


def _import_one(path: Path) -> models.ImportResult:
    try:
        return models.ImportResult(path, models.import_model(path), None)
    except StudioError as err:
        return models.ImportResult(path, None, err)


def _report_imports(results: list[models.ImportResult], as_json: bool) -> None:
    if as_json:
        imported = [
            {"path": str(r.path), **r.model.model_dump(mode="json")} for r in results if r.model
        ]
        refused = [
            {"path": str(r.path), "reason": str(r.error), "exit_code": r.error.exit_code}
            for r in results
            if r.error
        ]
        _emit({"imported": imported, "refused": refused})
        return
    for result in results:
        if result.model is not None:
            model = result.model
            print(f"imported {result.path} as {model.id}: {model.name} ({model.task})")
            if model.commercial_use is False:
                _note(f"  note: {model.id} is licensed {model.licence}: not for commercial use")
        else:
            _note(f"studio: refused {result.path}: {result.error}")


# ---------------------------------------------------------------- verify and remove


def _verify(args: argparse.Namespace) -> int:
    results = models.verify()
    if args.json:
        rows = [{"id": r.model.id, "ok": r.ok, "reason": r.reason} for r in results]
        _emit({"results": rows})
    else:
        if not results:
            print("No models installed.")
        for result in results:
            print(f"{'ok    ' if result.ok else 'FAILED'} {result.model.id}: {result.reason}")
    return OK if all(result.ok for result in results) else MODEL_PROBLEM


def _remove(args: argparse.Namespace) -> int:
    model = models.remove(args.id)
    if args.json:
        _emit({"removed": model.model_dump(mode="json")})
    else:
        print(f"removed {model.id} ({model.file})")
    return OK


# ---------------------------------------------------------------- download


def _download(args: argparse.Namespace) -> int:
    if args.recommended:
        if args.id or args.url:
            raise UsageError("--recommended downloads the catalog's choices: give no ID or --url")
        return _download_recommended(args)
    if not args.id:
        raise UsageError("give a model ID, or --recommended")
    if args.task:
        raise UsageError("--task goes with --recommended")
    with _ByteBar(enabled=not args.json) as bar:
        if args.to is not None:
            path = models.fetch(
                args.id, args.to, bar.update, args.url, allow_unverified=args.allow_unverified
            )
        else:
            model = models.download(
                args.id, bar.update, args.url, allow_unverified=args.allow_unverified
            )
    if args.to is not None:
        if args.json:
            _emit({"downloaded": str(path), "id": args.id})
        else:
            print(f"downloaded {args.id} to {path}")
        return OK
    if args.json:
        _emit({"installed": model.model_dump(mode="json")})
    else:
        licence = _licence(model.licence, model.commercial_use)
        print(f"installed {model.id}: {model.name} ({model.task}) [{licence}]")
    return OK


def _download_recommended(args: argparse.Namespace) -> int:
    done: list[dict[str, Any]] = []
    for recommendation in models.recommendations(args.task):
        model = recommendation.entry
        if model is None:
            if not args.json:
                _note(f"{recommendation.task}: no recommended model: {recommendation.reason}")
            continue
        with _ByteBar(enabled=not args.json) as bar:
            if args.to is not None:
                path = models.fetch(model.id, args.to, bar.update)
                done.append({"id": model.id, "task": model.task, "downloaded": str(path)})
            else:
                installed = models.download(model.id, bar.update)
                done.append({"id": installed.id, "task": installed.task, "installed": True})
        if not args.json:
            licence = _licence(model.licence, model.commercial_use)
            print(f"{model.task}: {model.id} ready: {model.name} [{licence}]")
    if args.json:
        _emit({"recommended": done})
    return OK


def _default(args: argparse.Namespace) -> int:
    if args.clear == bool(args.engine):
        raise UsageError("give an ENGINE to make the default, or --clear (not both)")
    if args.engine:
        from studio.engine.registry import build_registry

        known = [spec.id for spec in build_registry().engines(args.task)]
        if args.engine not in known:
            raise UsageError(
                f"No engine {args.engine!r} for {args.task}. Engines: {', '.join(known)}"
            )
    defaults.pin_default(args.task, args.engine)
    if args.json:
        _emit({"task": args.task, "pinned": args.engine})
    elif args.engine:
        print(f"{args.engine} is now the default for {args.task} (`--engine` still picks another)")
    else:
        print(f"{args.task}: pin cleared; the best installed model (or the built-in) leads")
    return OK


class _ByteBar:
    """A tqdm bar in bytes on stderr, restarted for each file of a download."""

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._bar: tqdm[Any] | None = None

    def __enter__(self) -> _ByteBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()

    def update(self, done: int, total: int | None) -> None:
        if not self._enabled:
            return
        if self._bar is None or done < self._bar.n or total != self._bar.total:
            self._close()
            self._bar = tqdm(
                total=total, file=sys.stderr, unit="B", unit_scale=True, unit_divisor=1024
            )
        self._bar.update(done - self._bar.n)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
