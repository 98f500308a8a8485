"""The installer's argument handling, the offline bundle and idempotent re-install, offline.

Installs use a fake `studio` wheel (a console script that logs its arguments), so no test
downloads anything or installs torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from installer import bundle
from tests.shared import shared_file

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "installer" / "install.sh"
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _install(
    *args: str, env: dict[str, str] | None = None, script: Path = INSTALL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


# ---------------------------------------------------------------- arguments


def test_help_lists_the_options() -> None:
    result = _install("--help")
    assert result.returncode == 0
    for option in ("--dev", "--offline", "--models", "--models-from", "--torch", "uninstall"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frobnicate"], "unknown option"),
        (["--offline"], "needs a bundle"),
        (["--offline", "/no/such/bundle.tar"], "no such bundle"),
        (["--models"], "at least one catalog id"),
        (["--models", "--dev"], "at least one catalog id"),
        (["--offline", ".", "--models", "lama"], "exclude each other"),
        (["--offline", ".", "--dev"], "exclude each other"),
        (["--models-from", "/no/such/folder"], "no such folder"),
        (["--models-from", ".", "--models-from", "/no/such/folder"], "no such folder"),
        (["--torch", "gpu"], "auto, cpu or cuda"),
        (["--torch"], "auto, cpu or cuda"),
        (["--prefix"], "needs a folder"),
    ],
)
def test_bad_arguments_exit_2_with_a_reason(args: list[str], message: str) -> None:
    result = _install(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_uninstall_without_an_install_says_so(tmp_path: Path) -> None:
    result = _install("uninstall", "--prefix", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "nothing to uninstall" in result.stderr


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "STUDIO_BIN_DIR": str(tmp_path / "bin"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHON": sys.executable,
    }


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    result = _install("--dry-run", "--prefix", str(tmp_path / "prefix"), env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "+ " in result.stdout
    assert not any(tmp_path.iterdir())


def test_models_recommended_downloads_each_tasks_recommended_model(tmp_path: Path) -> None:
    args = ("--models", "recommended", "kair-dncnn-25")
    result = _install("--dry-run", "--prefix", str(tmp_path / "prefix"), *args, env=_env(tmp_path))
    assert result.returncode == 0, result.stderr
    downloads = [
        line.split("studio ", 1)[1]
        for line in result.stdout.splitlines()
        if "models download" in line
    ]
    assert downloads == ["models download --recommended", "models download kair-dncnn-25"]


def test_bundle_models_recommended_asks_the_model_manager_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def record(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        commands.append(cmd[1:])
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(bundle.subprocess, "run", record)
    bundle.download_models(tmp_path, ["recommended", "kair-dncnn-25"])
    assert commands == [
        ["-m", "studio", "models", "download", "--recommended", "--to", str(tmp_path)],
        ["-m", "studio", "models", "download", "kair-dncnn-25", "--to", str(tmp_path)],
    ]


def _fake_nvidia_smi(folder: Path, *, gpu: bool) -> dict[str, str]:
    """PATH with an `nvidia-smi` that finds a GPU (exit 0) or none (exit 9)."""
    folder.mkdir()
    tool = folder / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nexit {0 if gpu else 9}\n")
    tool.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize(
    ("gpu", "args", "cpu_index"),
    [
        (False, [], True),  # no GPU and the CPU index answers: the CPU build
        (False, ["--cpu-torch", "file:///no/such/index"], False),  # it does not: the default
        (False, ["--torch", "cuda"], False),
        (False, ["--torch", "cpu"], True),
        (True, [], False),
        (True, ["--torch", "cpu"], True),
    ],
)
def test_the_cpu_only_torch_build_is_chosen_without_an_nvidia_gpu(
    tmp_path: Path, gpu: bool, args: list[str], cpu_index: bool
) -> None:
    index = tmp_path / "cpu-index"
    index.mkdir()
    env = {
        **_env(tmp_path),
        **_fake_nvidia_smi(tmp_path / "tools", gpu=gpu),
        "STUDIO_NVIDIA_PROC": str(tmp_path / "no-driver"),
    }
    prefix = ["--dry-run", "--prefix", str(tmp_path / "prefix"), "--cpu-torch", index.as_uri()]
    result = _install(*prefix, *args, env=env)
    assert result.returncode == 0, result.stderr
    torch_lines = [line for line in result.stdout.splitlines() if "torch torchvision" in line]
    used = args[args.index("--cpu-torch") + 1] if "--cpu-torch" in args else index.as_uri()
    if cpu_index:
        assert len(torch_lines) == 1 and f"--index-url {used}" in torch_lines[0]
    else:
        assert torch_lines == []
    assert ("==> NVIDIA GPU found" in result.stdout) == (gpu and "--torch" not in args)
    assert ("==> No NVIDIA GPU found" in result.stdout) == (not gpu and "--torch" not in args)
    assert ("cannot be reached" in result.stdout) == ("file:///no/such/index" in args)


def test_a_loaded_nvidia_driver_counts_as_a_gpu_without_nvidia_smi(tmp_path: Path) -> None:
    driver = tmp_path / "driver"
    driver.mkdir()
    env = {**_env(tmp_path), "STUDIO_NVIDIA_PROC": str(driver), "PATH": "/usr/bin:/bin"}
    result = _install("--dry-run", "--prefix", str(tmp_path / "prefix"), env=env)
    assert result.returncode == 0, result.stderr
    assert "==> NVIDIA GPU found" in result.stdout


def test_the_install_builds_outside_the_checkout(tmp_path: Path) -> None:
    env = {**_env(tmp_path), **_fake_nvidia_smi(tmp_path / "tools", gpu=True)}
    result = _install("--dry-run", "--prefix", str(tmp_path / "prefix"), env=env)
    assert result.returncode == 0, result.stderr
    installs = [line for line in result.stdout.splitlines() if " pip install " in line]
    assert len(installs) == 1 and str(ROOT) not in installs[0].split(" -c ")[1].split()[1:]
    staged = Path(installs[0].split()[-1])
    assert staged.parent == Path(tempfile.gettempdir()) and not staged.exists()  # removed after


# ---------------------------------------------------------------- bundles


def _wheel(
    folder: Path, name: str, version: str, files: dict[str, str], requires: tuple[str, ...] = ()
) -> Path:
    """A minimal pure-Python wheel."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files = {
        **files,
        f"{info}/METADATA": metadata + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = [f"{path},," for path in files] + [f"{info}/RECORD,,"]
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def _fake_studio_wheel(
    folder: Path, message: str = "fake studio", version: str = "0.0.1", helper: str = "1.0"
) -> Path:
    """A wheel named studio, needing `studio_helper` (whose wheel goes beside it), whose
    `studio` script prints `message`, logs its arguments to $FAKE_STUDIO_LOG and exits with
    $FAKE_STUDIO_EXIT for `studio models ...`; its `studio.core.paths.models_dir()` is
    $STUDIO_MODELS_DIR."""
    main = (
        "import os, sys\n"
        "def main():\n"
        f"    print({message!r})\n"
        "    if os.environ.get('FAKE_STUDIO_LOG'):\n"
        "        with open(os.environ['FAKE_STUDIO_LOG'], 'a') as log:\n"
        "            log.write(' '.join(sys.argv[1:]) + '\\n')\n"
        "    if sys.argv[1:2] == ['models']:\n"
        "        sys.exit(int(os.environ.get('FAKE_STUDIO_EXIT', '0')))\n"
    )
    files = {
        "studio_fake/__init__.py": main,
        "studio/__init__.py": "",
        "studio/core/__init__.py": "",
        "studio/core/paths.py": "import os\nfrom pathlib import Path\n\n\n"
        "def models_dir():\n    return Path(os.environ['STUDIO_MODELS_DIR'])\n",
        f"studio-{version}.dist-info/entry_points.txt": "[console_scripts]\n"
        "studio = studio_fake:main\n",
    }
    _wheel(folder, "studio_helper", helper, {"studio_helper.py": ""})
    return _wheel(folder, "studio", version, files, requires=("studio_helper",))


def _bundle(
    root: Path, models: dict[str, bytes] | None = None, message: str = "fake studio"
) -> Path:
    """A bundle folder as `bundle.py build` lays it out, with a fake Studio wheel."""
    _fake_studio_wheel(root / "wheels", message)
    for name, data in (models if models is not None else {"tiny.pth": b"weights"}).items():
        (root / "models" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "models" / name).write_bytes(data)
    bundle.copy_installer(root / "installer")
    bundle.write_manifest(root, PYTHON_VERSION, [])
    return root


def _tar(root: Path, output: Path) -> Path:
    with tarfile.open(output, "w") as tar:
        tar.add(root, arcname="studio-bundle")
    return output


def test_manifest_lists_every_file_with_its_checksum(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b", {"tiny.pth": b"weights", "adain/decoder.pth": b"dec"})
    manifest = json.loads((root / "manifest.json").read_text())
    models = {m["path"]: m["sha256"] for m in manifest["models"]}
    assert models == {
        "models/tiny.pth": hashlib.sha256(b"weights").hexdigest(),
        "models/adain/decoder.pth": hashlib.sha256(b"dec").hexdigest(),
    }
    assert [w["path"] for w in manifest["wheels"]] == [
        "wheels/studio-0.0.1-py3-none-any.whl",
        "wheels/studio_helper-1.0-py3-none-any.whl",
    ]
    assert {i["path"] for i in manifest["installer"]} == {
        f"installer/{name}" for name in bundle.INSTALLER_FILES
    }
    assert bundle.verify(root)["python"] == PYTHON_VERSION


def test_manifest_records_what_the_model_manager_recognised(tmp_path: Path) -> None:
    root = tmp_path / "b"
    (root / "models").mkdir(parents=True)
    (root / "models" / "a.pth").write_bytes(b"a")
    recognised = {"models/a.pth": {"id": "kair-dncnn-25", "catalog_id": "kair-dncnn-25"}}
    manifest = bundle.write_manifest(root, "3.11", [], recognised)
    assert manifest["models"][0]["id"] == "kair-dncnn-25"


def _unlisted_model_in_a_folder(root: Path) -> None:
    (root / "models" / "sub").mkdir()
    (root / "models" / "sub" / "extra.pth").write_bytes(b"extra")


def _symlink_outside(root: Path) -> None:
    (root / "models" / "tiny.pth").unlink()
    (root / "models" / "tiny.pth").symlink_to(root.parent / "elsewhere.pth")
    (root.parent / "elsewhere.pth").write_bytes(b"weights")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: (r / "models" / "tiny.pth").write_bytes(b"tampered"), "corrupt"),
        (lambda r: (r / "installer" / "install.sh").write_text("rm -rf ~"), "corrupt"),
        (lambda r: (r / "models" / "tiny.pth").unlink(), "missing"),
        (lambda r: (r / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"x"), "not listed"),
        (_unlisted_model_in_a_folder, "not listed"),
        (lambda r: (r / "manifest.json").unlink(), "not a Studio bundle"),
        (lambda r: (r / "manifest.json").write_text("{"), "unreadable"),
        (_symlink_outside, "link"),
    ],
)
def test_verify_refuses_an_altered_bundle(tmp_path: Path, damage, message: str) -> None:
    root = _bundle(tmp_path / "b")
    damage(root)
    with pytest.raises(bundle.BundleError, match=message):
        bundle.verify(root)


def test_a_bundle_for_another_python_is_refused(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b")
    manifest = bundle.verify(root)
    with pytest.raises(bundle.BundleError, match=r"Python 3\.11, not 3\.99"):
        bundle.check_python({**manifest, "python": "3.11"}, "3.99")


def test_bundle_cli_verify_exit_codes(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "b")
    command = [sys.executable, str(ROOT / "installer" / "bundle.py"), "verify", str(root)]
    ok = subprocess.run(command, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "1 models" in ok.stdout
    (root / "models" / "tiny.pth").write_bytes(b"tampered")
    bad = subprocess.run(command, capture_output=True, text=True)
    assert bad.returncode == 1
    assert "corrupt" in bad.stderr


def test_copy_models_keeps_folders_skips_hidden_and_refuses_clashes(tmp_path: Path) -> None:
    first, second, models = tmp_path / "first", tmp_path / "second", tmp_path / "models"
    for folder, data in ((first, b"one"), (second, b"two")):
        (folder / "style").mkdir(parents=True)
        (folder / "style" / "decoder.pth").write_bytes(data)
    (first / ".downloads").mkdir()
    (first / ".downloads" / "partial.pth").write_bytes(b"half")
    (first / "notes.txt").write_text("not a model")
    bundle.copy_models(models, [first, first])
    assert sorted(p.relative_to(models).as_posix() for p in models.rglob("*.*")) == [
        "style/decoder.pth"
    ]
    with pytest.raises(bundle.BundleError, match=r"two different model files"):
        bundle.copy_models(models, [second])


def test_build_refuses_a_file_studio_cannot_use(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(bundle.BundleError, match=r"cannot use these model files: garbage.pth"):
        bundle.recognise_models(tmp_path)


@pytest.mark.realweights
def test_build_recognises_a_published_model(tmp_path: Path) -> None:
    source = shared_file("models", "denoising", "kair_dncnn_25.pth")
    (tmp_path / "models").mkdir()
    shutil.copyfile(source, tmp_path / "models" / source.name)
    recognised = bundle.recognise_models(tmp_path)
    assert recognised["models/kair_dncnn_25.pth"]["catalog_id"] == "kair-dncnn-25"
    assert recognised["models/kair_dncnn_25.pth"]["task"] == "denoise"


# ---------------------------------------------------------------- offline installs


def _tamper_model(root: Path) -> None:
    (root / "models" / "tiny.pth").write_bytes(b"tampered")


def _retarget_python(root: Path) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "python": "3.99"}))


@pytest.mark.parametrize(
    ("damage", "message"),
    [(_tamper_model, "models/tiny.pth is corrupt"), (_retarget_python, "for Python 3.99")],
)
def test_a_bad_bundle_is_refused_before_anything_is_installed(
    tmp_path: Path, damage, message: str
) -> None:
    root = _bundle(tmp_path / "bundle")
    damage(root)
    archive = _tar(root, tmp_path / "bundle.tar")
    prefix = tmp_path / "prefix"
    result = _install("--offline", str(archive), "--prefix", str(prefix), env=_env(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "refusing to install" in result.stderr
    assert not prefix.exists()
    assert not (tmp_path / "bin").exists() and not (tmp_path / "data").exists()


def test_offline_install_is_idempotent_and_uninstall_removes_what_it_added(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "bundle", models={"denoise/tiny.pth": b"weights"})
    prefix, bin_dir, data = tmp_path / "prefix", tmp_path / "bin", tmp_path / "data"
    log = tmp_path / "studio.log"
    rogue = _fake_studio_wheel(tmp_path / "rogue", "rogue", version="9.9", helper="9.9").parent
    env = {**_env(tmp_path), "FAKE_STUDIO_LOG": str(log), "PIP_FIND_LINKS": str(rogue)}

    first = _install(
        "--offline", str(_tar(root, tmp_path / "b.tar")), "--prefix", str(prefix), env=env
    )
    assert first.returncode == 0, first.stdout + first.stderr
    unpacked_models = Path(_unpacked_models(first.stdout))
    assert log.read_text().splitlines() == [f"models import {unpacked_models}"]
    assert not unpacked_models.parent.parent.exists(), "the unpacked bundle is left in /tmp"
    helper = "import importlib.metadata as m; print(m.version('studio_helper'))"
    probe = [str(prefix / "venv" / "bin" / "python"), "-I", "-c", helper]
    assert subprocess.run(probe, capture_output=True, text=True).stdout == "1.0\n", (
        "the offline install looked beyond the bundle (PIP_FIND_LINKS)"
    )
    record = (prefix / "installed-files.txt").read_text()

    newer = _bundle(tmp_path / "newer", models={}, message="newer studio")
    mine = tmp_path / "my-models"
    mine.mkdir()
    second = _install(
        *("--offline", str(newer), "--prefix", str(prefix), "--no-desktop"),
        *("--models-from", str(mine)),
        env=env,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Reusing the environment" in second.stdout
    assert log.read_text().splitlines()[-1] == f"models import {mine}"
    assert (prefix / "installed-files.txt").read_text() == record

    launcher = bin_dir / "studio"
    assert launcher.resolve() == (prefix / "venv" / "bin" / "studio").resolve()
    assert subprocess.run([str(launcher)], capture_output=True, text=True).stdout == (
        "newer studio\n"
    )
    desktop = (data / "applications" / "studio.desktop").read_text()
    assert f"Exec={prefix}/venv/bin/studio gui %F" in desktop
    assert (data / "icons" / "hicolor" / "scalable" / "apps" / "studio.svg").is_file()

    user_models = prefix / "models"  # as ~/.local/share/studio holds the user's models
    user_models.mkdir()
    (user_models / "mine.pth").write_bytes(b"weights")
    removed = _install("uninstall", "--prefix", str(prefix), env=env)
    assert removed.returncode == 0, removed.stderr
    assert not launcher.exists() and not launcher.is_symlink()
    assert not (data / "applications" / "studio.desktop").exists()
    assert list(prefix.iterdir()) == [user_models]
    assert (user_models / "mine.pth").read_bytes() == b"weights"


def _unpacked_models(stdout: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.startswith("==> Importing models")]
    return line.removeprefix("==> Importing models from ")


def test_the_installer_inside_a_bundle_installs_it_and_refused_models_exit_4(
    tmp_path: Path,
) -> None:
    root = _bundle(tmp_path / "studio-bundle")
    prefix = tmp_path / "prefix"
    env = {**_env(tmp_path), "FAKE_STUDIO_EXIT": "4"}
    script = root / "installer" / "install.sh"
    result = _install("--prefix", str(prefix), "--no-desktop", script=script, env=env)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Installing Studio from the bundle (no network)" in result.stdout
    assert "some models were refused" in result.stderr
    studio = subprocess.run([str(tmp_path / "bin" / "studio")], capture_output=True, text=True)
    assert studio.stdout == "fake studio\n"
    assert str(prefix / "venv") in (prefix / "installed-files.txt").read_text()

    models, pictures = tmp_path / "models", tmp_path / "Pictures"
    models.mkdir()
    pictures.mkdir()
    env["STUDIO_MODELS_DIR"] = str(models)
    removed = _install("uninstall", "--remove-models", "--prefix", str(prefix), env=env)
    assert removed.returncode == 0, removed.stderr
    assert not models.exists() and not prefix.exists()
    assert pictures.is_dir()
