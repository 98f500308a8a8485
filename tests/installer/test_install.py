"""The installer's argument handling, the offline bundle and idempotent re-install, offline."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from installer import bundle

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "installer" / "install.sh"


def _install(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_help_lists_the_options() -> None:
    result = _install("--help")
    assert result.returncode == 0
    for option in ("--dev", "--offline", "--models", "--models-from", "uninstall"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "unknown option"),
        (["--offline"], "needs a bundle"),
        (["--models"], "at least one catalog id"),
        (["--offline", "b.tar", "--models", "lama"], "exclude each other"),
        (["--models-from", "/no/such/folder"], "no such folder"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(args: list[str], message: str) -> None:
    result = _install(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    env = {"STUDIO_BIN_DIR": str(tmp_path / "bin"), "XDG_DATA_HOME": str(tmp_path / "data")}
    result = _install("--dry-run", "--prefix", str(tmp_path / "prefix"), env=env)
    assert result.returncode == 0, result.stderr
    assert "+ " in result.stdout
    assert not any(tmp_path.iterdir())


def _fake_studio_wheel(folder: Path) -> Path:
    """A minimal wheel named studio with a `studio` console script, for installer tests."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "studio-0.0.1-py3-none-any.whl"
    files = {
        "studio_fake/__init__.py": "def main():\n    print('fake studio')\n",
        "studio-0.0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: studio\nVersion: 0.0.1\n",
        "studio-0.0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
        "studio-0.0.1.dist-info/entry_points.txt": "[console_scripts]\nstudio = studio_fake:main\n",
    }
    record = [f"{name},," for name in files] + ["studio-0.0.1.dist-info/RECORD,,"]
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr("studio-0.0.1.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def _bundle(root: Path, model_bytes: bytes = b"weights") -> Path:
    _fake_studio_wheel(root / "wheels")
    (root / "models").mkdir()
    (root / "models" / "tiny.pth").write_bytes(model_bytes)
    bundle.write_manifest(root, "3.11", [])
    return root


def test_manifest_lists_every_file_with_its_checksum(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b")
    manifest = json.loads((root / "manifest.json").read_text())
    model = manifest["models"][0]
    assert model["path"] == "models/tiny.pth"
    assert model["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert [w["path"] for w in manifest["wheels"]] == ["wheels/studio-0.0.1-py3-none-any.whl"]
    assert bundle.verify(root)["python"] == "3.11"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "models" / "tiny.pth").write_bytes(b"tampered"), "corrupt"),
        (lambda r: (r / "models" / "tiny.pth").unlink(), "missing"),
        (lambda r: (r / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"x"), "not listed"),
        (lambda r: (r / "manifest.json").unlink(), "not a Studio bundle"),
    ],
)
def test_verify_refuses_an_altered_bundle(tmp_path: Path, damage, message: str) -> None:
    root = _bundle(tmp_path / "b")
    damage(root)
    with pytest.raises(bundle.BundleError, match=message):
        bundle.verify(root)


def test_bundle_cli_verify_exit_codes(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b")
    command = [sys.executable, str(ROOT / "installer" / "bundle.py"), "verify", str(root)]
    assert subprocess.run(command).returncode == 0
    (root / "models" / "tiny.pth").write_bytes(b"tampered")
    bad = subprocess.run(command, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "corrupt" in bad.stderr


def test_offline_install_is_idempotent_and_uninstall_removes_what_it_added(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "bundle")
    (root / "models").joinpath("tiny.pth").unlink()
    bundle.write_manifest(root, "3.11", [])
    prefix, bin_dir, data = tmp_path / "prefix", tmp_path / "bin", tmp_path / "data"
    env = {"STUDIO_BIN_DIR": str(bin_dir), "XDG_DATA_HOME": str(data), "PYTHON": sys.executable}
    args = ("--offline", str(root), "--no-deps", "--prefix", str(prefix))

    first = _install(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    record = (prefix / "installed-files.txt").read_text()
    second = _install(*args, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (prefix / "installed-files.txt").read_text() == record
    assert "Reusing the environment" in second.stdout

    launcher = bin_dir / "studio"
    assert launcher.resolve() == (prefix / "venv" / "bin" / "studio").resolve()
    assert subprocess.run([str(launcher)], capture_output=True, text=True).stdout == "fake studio\n"
    desktop = (data / "applications" / "studio.desktop").read_text()
    assert f"Exec={prefix}/venv/bin/studio gui %F" in desktop
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "studio.svg").is_file()

    user_models = data / "studio" / "models"
    user_models.mkdir(parents=True)
    removed = _install("uninstall", "--prefix", str(prefix), env=env)
    assert removed.returncode == 0, removed.stderr
    assert not launcher.exists() and not launcher.is_symlink()
    assert not (prefix / "venv").exists()
    assert not (data / "applications" / "studio.desktop").exists()
    assert user_models.is_dir()
