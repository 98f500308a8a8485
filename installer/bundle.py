"""Offline bundles: build one on a connected machine, verify one before installing it.

A bundle is a folder (or an uncompressed tar of one) holding ``wheels/`` (Studio and every
dependency for one platform and Python), ``models/`` (model files) and ``manifest.json``
listing every file with its size and sha256. Standard library only: it runs before Studio
is installed.

    python installer/bundle.py build -o studio-bundle.tar [--models-from DIR] [--models ID...]
    python installer/bundle.py verify BUNDLE
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
MODEL_SUFFIXES = {".pth", ".pt", ".ckpt", ".model", ".bin", ".safetensors"}


class BundleError(Exception):
    """The bundle is incomplete, altered or cannot be built."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entries(root: Path, folder: str) -> list[dict[str, object]]:
    files = sorted(p for p in (root / folder).glob("*") if p.is_file())
    return [
        {"path": f"{folder}/{p.name}", "size": p.stat().st_size, "sha256": sha256_of(p)}
        for p in files
    ]


def write_manifest(root: Path, python: str, platforms: list[str]) -> dict[str, object]:
    """Describe every wheel and model file under `root` in `root/manifest.json`."""
    manifest: dict[str, object] = {
        "format": FORMAT,
        "python": python,
        "platforms": platforms,
        "wheels": _entries(root, "wheels"),
        "models": _entries(root, "models"),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def verify(root: Path) -> dict[str, object]:
    """Check that the bundle holds exactly the files its manifest lists, unaltered."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise BundleError(f"{root} is not a Studio bundle: manifest.json is missing")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise BundleError(f"unsupported bundle format {manifest.get('format')!r}")
    listed = {str(e["path"]): e for e in [*manifest["wheels"], *manifest["models"]]}
    present = {
        f"{folder}/{p.name}" for folder in ("wheels", "models") for p in (root / folder).glob("*")
    }
    if missing := sorted(set(listed) - present):
        raise BundleError(f"missing from the bundle: {', '.join(missing)}")
    if extra := sorted(present - set(listed)):
        raise BundleError(f"not listed in the manifest: {', '.join(extra)}")
    for path, entry in listed.items():
        if sha256_of(root / path) != entry["sha256"]:
            raise BundleError(f"{path} is corrupt: its sha256 differs from the manifest")
    if not any(str(e["path"]).startswith("wheels/studio-") for e in manifest["wheels"]):
        raise BundleError("the bundle holds no Studio wheel")
    return manifest


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


def collect_models(models: Path, sources: list[Path], ids: list[str]) -> None:
    """Copy model files from folders, and download catalog models by id (checksum-verified)."""
    models.mkdir(parents=True, exist_ok=True)
    for folder in sources:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in MODEL_SUFFIXES:
                shutil.copy2(path, models / path.name)
    for model_id in ids:
        cmd = [sys.executable, "-m", "studio", "models", "download", model_id, "--to", str(models)]
        subprocess.run(cmd, check=True)


def build(
    output: Path, python: str, platforms: list[str], model_dirs: list[Path], model_ids: list[str]
) -> dict[str, object]:
    """Build the bundle folder in a temporary place, then write it as one tar at `output`."""
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        root = Path(tmp) / "studio-bundle"
        (root / "wheels").mkdir(parents=True)
        collect_wheels(root / "wheels", python, platforms)
        collect_models(root / "models", model_dirs, model_ids)
        manifest = write_manifest(root, python, platforms)
        partial = output.with_name(output.name + ".part")
        with tarfile.open(partial, "w") as tar:
            tar.add(root, arcname=root.name)
        partial.replace(output)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="collect wheels and models into one archive")
    make.add_argument("-o", "--output", type=Path, required=True)
    make.add_argument("--python", default=platform.python_version().rsplit(".", 1)[0])
    make.add_argument("--platform", action="append", default=[], help="pip platform tag")
    make.add_argument("--models-from", action="append", type=Path, default=[])
    make.add_argument("--models", nargs="*", default=[], help="catalog ids to download")
    check = commands.add_parser("verify", help="check a bundle folder against its manifest")
    check.add_argument("bundle", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            manifest = verify(args.bundle)
            print(f"bundle ok: {len(manifest['wheels'])} wheels, {len(manifest['models'])} models")
        else:
            manifest = build(
                args.output.resolve(), args.python, args.platform, args.models_from, args.models
            )
            size = args.output.stat().st_size / 2**20
            print(
                f"wrote {args.output} ({size:.0f} MiB, {len(manifest['wheels'])} wheels, "
                f"{len(manifest['models'])} models)"
            )
    except (BundleError, subprocess.CalledProcessError, ValueError) as err:
        print(f"bundle: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
