"""Offline bundles: build one on a connected machine, verify one before installing it.

A bundle is a folder (or an uncompressed tar of one) holding ``wheels/`` (Studio and every
dependency for one platform and Python), ``models/`` (model files, checked at build time to
load and be recognised), ``installer/`` (this installer, so the bundle installs on its own) and
``manifest.json`` listing every file with its size and sha256. Standard library only: it runs
before Studio is installed.

    python installer/bundle.py build -o studio-bundle.tar [--models-from DIR] [--models ID...]
    python installer/bundle.py build -o studio-bundle.tar --models recommended
    python installer/bundle.py verify BUNDLE
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

FORMAT = 1
HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent
FOLDERS = ("wheels", "models", "installer")
INSTALLER_FILES = ("install.sh", "install.ps1", "bundle.py", "constraints.txt")
MODEL_SUFFIXES = {".pth", ".pt", ".ckpt", ".model", ".bin", ".safetensors"}


class BundleError(Exception):
    """The bundle is incomplete, altered or cannot be built."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path, folder: str) -> list[Path]:
    return sorted(p for p in (root / folder).rglob("*") if p.is_file() or p.is_symlink())


def _entries(root: Path, folder: str) -> list[dict[str, object]]:
    return [
        {"path": p.relative_to(root).as_posix(), "size": p.stat().st_size, "sha256": sha256_of(p)}
        for p in _files(root, folder)
    ]


def write_manifest(
    root: Path,
    python: str,
    platforms: list[str],
    recognised: dict[str, dict[str, object]] | None = None,
) -> dict[str, object]:
    """Describe every file under `root` in `root/manifest.json`.

    `recognised` maps a model's bundle path to what the model manager made of it (id, task).
    """
    models = _entries(root, "models")
    for entry in models:
        entry.update((recognised or {}).get(str(entry["path"]), {}))
    manifest: dict[str, object] = {
        "format": FORMAT,
        "python": python,
        "platforms": platforms,
        "wheels": _entries(root, "wheels"),
        "models": models,
        "installer": _entries(root, "installer"),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def _listed(manifest: dict[str, object]) -> dict[str, dict[str, object]]:
    entries: list[dict[str, object]] = []
    for folder in FOLDERS:
        entries += manifest.get(folder, [])
    return {str(e["path"]): e for e in entries}


def verify(root: Path) -> dict[str, object]:
    """Check that the bundle holds exactly the files its manifest lists, unaltered."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a Studio bundle: manifest.json is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError(f"manifest.json is unreadable: {err}") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"unsupported bundle format {manifest.get('format')!r}")
    listed = _listed(manifest)
    present = {p.relative_to(root).as_posix() for f in FOLDERS for p in _files(root, f)}
    if missing := sorted(set(listed) - present):
        raise BundleError(f"missing from the bundle: {', '.join(missing)}")
    if extra := sorted(present - set(listed)):
        raise BundleError(f"not listed in the manifest: {', '.join(extra)}")
    for path, entry in listed.items():
        file = root / path
        if file.is_symlink() or not file.resolve().is_relative_to(root.resolve()):
            raise BundleError(f"{path} is a link: a bundle holds plain files only")
        if sha256_of(file) != entry["sha256"]:
            raise BundleError(f"{path} is corrupt: its sha256 differs from the manifest")
    if not any(path.startswith("wheels/studio-") for path in listed):
        raise BundleError("the bundle holds no Studio wheel")
    return manifest


def check_python(manifest: dict[str, object], version: str) -> None:
    """Refuse a bundle whose wheels were collected for another Python."""
    if manifest["python"] != version:
        raise BundleError(
            f"this bundle holds wheels for Python {manifest['python']}, not {version}: "
            f"install Python {manifest['python']} or pass its interpreter with --python"
        )


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"], check=True)


def collect_wheels(wheels: Path, python: str, platforms: list[str]) -> None:
    """Studio's wheel and every dependency's, for the target Python and platforms."""
    _pip("wheel", "--no-deps", "-w", str(wheels), str(SOURCE))
    (studio_wheel,) = wheels.glob("studio-*.whl")
    target: list[str] = []
    if platforms:
        target = ["--only-binary=:all:", "--python-version", python]
        for name in platforms:
            target += ["--platform", name]
    constraints = ["-c", str(HERE / "constraints.txt")]
    _pip("download", "-d", str(wheels), *constraints, *target, str(studio_wheel))


def _model_files(folder: Path) -> list[Path]:
    """Model files under `folder`, hidden files and folders left out (as the importer does)."""
    if not folder.is_dir():
        raise BundleError(f"--models-from: no such folder: {folder}")
    return [
        path
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and path.suffix.lower() in MODEL_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def copy_models(models: Path, sources: list[Path]) -> None:
    """Copy the model files of each folder, keeping their sub-folders (companions stay beside)."""
    for folder in sources:
        for path in _model_files(folder):
            target = models / path.relative_to(folder)
            if target.exists():
                if sha256_of(target) != sha256_of(path):
                    raise BundleError(f"two different model files would be {target.name}")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


RECOMMENDED = "recommended"


def download_models(models: Path, ids: list[str]) -> None:
    """Download catalog models by id ("recommended": each task's recommended model); the model
    manager checks each against the catalog."""
    for model_id in ids:
        which = ["--recommended"] if model_id == RECOMMENDED else [model_id]
        cmd = [sys.executable, "-m", "studio", "models", "download", *which, "--to", str(models)]
        if subprocess.run(cmd).returncode != 0:
            raise BundleError(f"could not download {model_id} (see above)")


def recognise_models(root: Path) -> dict[str, dict[str, object]]:
    """Import the bundle's models into a throw-away models folder, as the installer will.

    Returns what each file was recognised as, by bundle path; refuses the bundle when a file
    does not load or serves no task, so an air-gapped install never meets a useless file.
    """
    if not _files(root, "models"):
        return {}
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "STUDIO_HOME": home, "STUDIO_MODELS_DIR": f"{home}/models"}
        cmd = [sys.executable, "-m", "studio", "models", "import", "--json", str(root / "models")]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise BundleError(
            "could not check the models: run bundle.py with the Python of a Studio install "
            f"(e.g. .venv/bin/python)\n{done.stderr.strip()}"
        ) from None
    if report["refused"]:
        reasons = "; ".join(f"{Path(r['path']).name}: {r['reason']}" for r in report["refused"])
        raise BundleError(f"Studio cannot use these model files: {reasons}")
    return {
        Path(m["path"]).relative_to(root).as_posix(): {
            key: m[key] for key in ("id", "catalog_id", "task")
        }
        for m in report["imported"]
    }


def copy_installer(folder: Path) -> None:
    folder.mkdir()
    for name in INSTALLER_FILES:
        shutil.copy2(HERE / name, folder / name)


def build(
    output: Path, python: str, platforms: list[str], model_dirs: list[Path], model_ids: list[str]
) -> dict[str, object]:
    """Build the bundle folder in a temporary place, then write it as one tar at `output`."""
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        root = Path(tmp) / "studio-bundle"
        (root / "models").mkdir(parents=True)
        copy_models(root / "models", model_dirs)
        download_models(root / "models", model_ids)
        recognised = recognise_models(root)
        copy_installer(root / "installer")
        (root / "wheels").mkdir()
        collect_wheels(root / "wheels", python, platforms)
        manifest = write_manifest(root, python, platforms, recognised)
        partial = output.with_name(output.name + ".part")
        with tarfile.open(partial, "w") as tar:
            tar.add(root, arcname=root.name)
        partial.replace(output)
    return manifest


def _summary(manifest: dict[str, object]) -> str:
    wheels, models = manifest["wheels"], manifest["models"]
    assert isinstance(wheels, list) and isinstance(models, list)
    size = sum(int(e["size"]) for e in [*wheels, *models]) / 2**20
    ids = ", ".join(str(m.get("id", m["path"])) for m in models) or "none"
    return (
        f"{len(wheels)} wheels for Python {manifest['python']}, "
        f"{len(models)} models ({ids}), {size:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="collect wheels and models into one archive")
    make.add_argument("-o", "--output", type=Path, required=True)
    make.add_argument("--python", default=platform.python_version().rsplit(".", 1)[0])
    make.add_argument("--platform", action="append", default=[], help="pip platform tag")
    make.add_argument("--models-from", action="append", type=Path, default=[], metavar="DIR")
    make.add_argument(
        "--models",
        nargs="+",
        default=[],
        metavar="ID",
        help='catalog ids; "recommended" is the recommended model of every task',
    )
    check = commands.add_parser("verify", help="check a bundle folder against its manifest")
    check.add_argument("bundle", type=Path)
    check.add_argument(
        "--any-python", action="store_true", help="do not require this Python's version"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            manifest = verify(args.bundle)
            if not args.any_python:
                check_python(manifest, platform.python_version().rsplit(".", 1)[0])
            print(f"bundle ok: {_summary(manifest)}")
        else:
            output = args.output.resolve()
            manifest = build(output, args.python, args.platform, args.models_from, args.models)
            print(f"wrote {args.output}: {_summary(manifest)}")
    except (BundleError, subprocess.CalledProcessError, ValueError, OSError) as err:
        print(f"bundle: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
