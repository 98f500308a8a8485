#!/usr/bin/env bash
# Install Studio into an isolated environment, put `studio` on the PATH and register a
# desktop entry. Safe to re-run. See `install.sh --help`.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$HERE/.." && pwd)"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
PREFIX="${STUDIO_PREFIX:-$DATA_HOME/studio}"
BIN_DIR="${STUDIO_BIN_DIR:-$HOME/.local/bin}"
PYTHON="${PYTHON:-}"
CPU_TORCH_INDEX="https://download.pytorch.org/whl/cpu"

usage() {
    cat <<'EOF'
Usage: install.sh [options]
       install.sh uninstall [--remove-models] [--prefix DIR]

Installs Studio into its own virtual environment, links `studio` into ~/.local/bin
and registers a desktop entry with the app icon. Run from an unpacked offline bundle
(studio-bundle/installer/install.sh), it installs that bundle.

Options:
  --dev                 developer install: editable, in .venv of this checkout, with test tools;
                        no launcher or desktop entry (run .venv/bin/studio)
  --offline BUNDLE      install from an offline bundle (.tar or folder) with no network at all
  --models ID...        download these catalog models after installing (needs network);
                        the id "recommended" downloads the recommended model of every task
  --models-from DIR     copy and verify the model files in DIR into the models folder (repeatable)
  --torch BUILD         auto (default): with an NVIDIA GPU, the package index's build (with
                        CUDA); without one, the smaller CPU-only build from the PyTorch wheel
                        index when it is reachable, else the package index's build (it says so);
                        cuda: always the package index's build; cpu: always the CPU-only build
  --cpu-torch URL       the CPU-only wheel index (default: https://download.pytorch.org/whl/cpu)
  --prefix DIR          where the environment goes (default: ~/.local/share/studio)
  --python EXE          the Python 3.11+ interpreter to use
  --no-desktop          do not register a desktop entry or launcher
  --no-deps             install Studio alone, not its dependencies (reinstalling Studio itself)
  --dry-run             print what would be done, change nothing
  -h, --help            show this help

Exit codes: 0 installed, 2 bad arguments or a refused bundle, 4 installed but some models
were refused or not downloaded, other: the step that failed.
Environment: STUDIO_PREFIX, STUDIO_BIN_DIR, XDG_DATA_HOME, PYTHON.
EOF
}

die() { echo "install.sh: $*" >&2; exit 2; }
say() { echo "==> $*"; }
run() { if [[ $DRY_RUN == 1 ]]; then echo "+ $*"; else "$@"; fi; }

DEV=0 OFFLINE="" MODELS=() MODEL_DIRS=() TORCH=auto CPU_TORCH="" DESKTOP=1 NO_DEPS=0 DRY_RUN=0
UNINSTALL=0 REMOVE_MODELS=0 MODEL_FAILURES=0 BUNDLE="" UNPACKED="" STAGED=""

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            uninstall) UNINSTALL=1 ;;
            --remove-models) REMOVE_MODELS=1 ;;
            --dev) DEV=1 ;;
            --offline) [[ $# -ge 2 ]] || die "--offline needs a bundle path"; OFFLINE="$2"; shift ;;
            --models)
                shift
                while [[ $# -gt 0 && "$1" != --* ]]; do MODELS+=("$1"); shift; done
                [[ ${#MODELS[@]} -gt 0 ]] || die "--models needs at least one catalog id"
                continue ;;
            --models-from) [[ $# -ge 2 ]] || die "--models-from needs a folder"; MODEL_DIRS+=("$2"); shift ;;
            --torch)
                [[ $# -ge 2 && "$2" =~ ^(auto|cpu|cuda)$ ]] || die "--torch needs auto, cpu or cuda"
                TORCH="$2"; shift ;;
            --cpu-torch) [[ $# -ge 2 ]] || die "--cpu-torch needs an index URL"; CPU_TORCH="$2"; shift ;;
            --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; PREFIX="$2"; shift ;;
            --python) [[ $# -ge 2 ]] || die "--python needs an interpreter"; PYTHON="$2"; shift ;;
            --no-desktop) DESKTOP=0 ;;
            --no-deps) NO_DEPS=1 ;;
            --dry-run) DRY_RUN=1 ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
        shift
    done
    if [[ -z "$OFFLINE" && $UNINSTALL == 0 && $DEV == 0 && -f "$SOURCE/manifest.json" ]]; then
        OFFLINE="$SOURCE"  # run from inside an unpacked bundle
    fi
    [[ -z "$OFFLINE" || ${#MODELS[@]} -eq 0 ]] || die "--offline and --models exclude each other: put the models in the bundle"
    [[ -z "$OFFLINE" || $DEV == 0 ]] || die "--offline and --dev exclude each other"
    [[ -z "$OFFLINE" || -e "$OFFLINE" ]] || die "--offline: no such bundle: $OFFLINE"
    local dir
    for dir in ${MODEL_DIRS[@]+"${MODEL_DIRS[@]}"}; do
        [[ -d "$dir" ]] || die "--models-from: no such folder: $dir"
    done
    if [[ $DEV == 1 ]]; then PREFIX="$SOURCE"; DESKTOP=0; fi
    VENV="$PREFIX/$([[ $DEV == 1 ]] && echo .venv || echo venv)"
    RECORD="$PREFIX/installed-files.txt"
}

find_python() {
    local candidate
    for candidate in "$PYTHON" python3.11 python3.12 python3.13 python3; do
        [[ -n "$candidate" ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"; return
        fi
    done
    die "Python 3.11 or newer is needed: install it, or pass --python EXE"
}

# An NVIDIA driver answers (nvidia-smi) or is loaded (/proc/driver/nvidia).
has_nvidia_gpu() {
    if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L >/dev/null 2>&1; return; fi
    [[ -d "${STUDIO_NVIDIA_PROC:-/proc/driver/nvidia}" ]]
}

# Whether the wheel index at $1 answers for torch (a file:// index: whether it is a folder).
index_reachable() {
    "$(find_python)" - "$1" <<'PY'
import os, sys, urllib.parse, urllib.request
url = sys.argv[1]
if url.startswith("file:"):
    sys.exit(not os.path.isdir(urllib.parse.urlparse(url).path))
try:
    with urllib.request.urlopen(url.rstrip("/") + "/torch/", timeout=15):
        pass
except Exception:
    sys.exit(1)
PY
}

# Remember what the installer added, once each, for `uninstall` (kept across re-runs).
record() {
    if [[ $DRY_RUN == 1 ]]; then return 0; fi
    mkdir -p "$(dirname "$RECORD")"
    grep -Fxqs -- "$1" "$RECORD" || echo "$1" >>"$RECORD"
}

create_venv() {
    if [[ -x "$VENV/bin/python" ]]; then
        say "Reusing the environment in $VENV"
    else
        say "Creating the environment in $VENV"
        run mkdir -p "$PREFIX"
        run "$(find_python)" -m venv "$VENV"
    fi
    record "$VENV"
}

pip_install() { run "$VENV/bin/python" -m pip install --disable-pip-version-check "$@"; }

# The CPU-only build of torch when asked for, or when no NVIDIA GPU is found and its index
# answers; otherwise the package index's own build, which on Linux carries several GB of CUDA.
install_cpu_torch() {
    local index="${CPU_TORCH:-$CPU_TORCH_INDEX}"
    if [[ $TORCH == cuda ]]; then return 0; fi
    if [[ $TORCH == auto ]]; then
        if has_nvidia_gpu; then say "NVIDIA GPU found: torch will run on it"; return 0; fi
        if ! index_reachable "$index"; then
            say "No NVIDIA GPU found, but the CPU-only torch index $index cannot be reached:" \
                "installing the default torch build (larger, with CUDA libraries) instead"
            return 0
        fi
        say "No NVIDIA GPU found: installing the smaller CPU-only build of torch"
    fi
    say "Installing the CPU build of torch from $index"
    pip_install -c "$HERE/constraints.txt" --index-url "$index" torch torchvision ||
        die "the CPU build of torch could not be installed from $index"
}

# A copy of the checkout to build from, so that no build/ or *.egg-info is left in it.
stage_source() {
    STAGED="$(mktemp -d)"
    trap 'rm -rf "$STAGED"' EXIT
    say "Copying the source to $STAGED to build it there"
    tar -C "$SOURCE" --exclude=./.git --exclude=./.venv --exclude=./venv --exclude=./build \
        --exclude='./*.egg-info' --exclude=__pycache__ -cf - . | tar -C "$STAGED" -xf -
}

install_online() {
    local target="$SOURCE" extras="" args=(-c "$HERE/constraints.txt")
    [[ $DEV == 1 ]] && extras="[dev]"
    if [[ $DEV == 0 ]]; then stage_source; target="$STAGED"; fi
    [[ $NO_DEPS == 1 ]] || install_cpu_torch
    if [[ $DEV == 1 ]]; then args+=(-e); fi
    [[ $NO_DEPS == 1 ]] && args=(--no-deps "${args[@]}")
    say "Installing Studio$extras"
    pip_install "${args[@]}" "$target$extras"
}

# Unpack (a tar) and verify the bundle before anything is installed; sets BUNDLE.
open_bundle() {
    BUNDLE="$OFFLINE"
    if [[ -f "$BUNDLE" ]]; then
        UNPACKED="$(mktemp -d)"
        trap 'rm -rf "$UNPACKED"' EXIT
        say "Unpacking $BUNDLE"
        run tar -xf "$BUNDLE" -C "$UNPACKED"
        BUNDLE="$UNPACKED/studio-bundle"
    fi
    say "Verifying the bundle"
    run "$(find_python)" "$HERE/bundle.py" verify "$BUNDLE" ||
        die "refusing to install from $OFFLINE: it is not the bundle that was built"
    if [[ -d "$BUNDLE/models" ]]; then MODEL_DIRS+=("$BUNDLE/models"); fi
}

# pip with nothing but the bundle: no index, no configuration file (/dev/null), no PIP_*
# variable (--isolated), and a dead proxy should anything still try to reach out.
pip_offline() {
    PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 no_proxy="" \
        http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
        "$VENV/bin/python" -m pip install --isolated --disable-pip-version-check \
        --no-index --find-links "$BUNDLE/wheels" "$@"
}

install_offline() {
    local wheel deps=() installed=0
    [[ $NO_DEPS == 1 ]] && deps=(--no-deps)
    [[ -e "$VENV/bin/studio" ]] && installed=1
    say "Installing Studio from the bundle (no network)"
    for wheel in "$BUNDLE"/wheels/studio-*.whl; do
        run pip_offline ${deps[@]+"${deps[@]}"} "$wheel"
        # pip keeps an installed Studio of the same version: a newer bundle must replace it
        if [[ $installed == 1 ]]; then run pip_offline --no-deps --force-reinstall "$wheel"; fi
    done
}

# Model problems do not undo the install: they are reported, and the exit code says so.
install_models() {
    local dir id
    for dir in ${MODEL_DIRS[@]+"${MODEL_DIRS[@]}"}; do
        say "Importing models from $dir"
        run "$VENV/bin/studio" models import "$dir" || MODEL_FAILURES=1
    done
    for id in ${MODELS[@]+"${MODELS[@]}"}; do
        if [[ "$id" == recommended ]]; then
            run "$VENV/bin/studio" models download --recommended || MODEL_FAILURES=1
        else
            run "$VENV/bin/studio" models download "$id" || MODEL_FAILURES=1
        fi
    done
}

link_launcher() {
    run mkdir -p "$BIN_DIR"
    run ln -sfn "$VENV/bin/studio" "$BIN_DIR/studio"
    record "$BIN_DIR/studio"
    case ":$PATH:" in *":$BIN_DIR:"*) ;; *) say "Add $BIN_DIR to your PATH to run \`studio\`" ;; esac
}

# A file the Studio wheel installs into <venv>/share/studio, or the checkout's copy.
resource() {
    if [[ -f "$VENV/share/studio/$1" ]]; then echo "$VENV/share/studio/$1"; else echo "$SOURCE/resources/$1"; fi
}

register_desktop() {
    local exe="$VENV/bin/studio"
    [[ "$exe" != *" "* ]] || exe="\"$exe\""
    case "$(uname -s)" in
        Linux)
            local apps="$DATA_HOME/applications" icons="$DATA_HOME/icons/hicolor/scalable/apps"
            run mkdir -p "$apps" "$icons"
            run cp "$(resource studio.svg)" "$icons/studio.svg"
            if [[ $DRY_RUN == 0 ]]; then
                sed "s|^Exec=.*|Exec=$exe gui %F|" "$(resource studio.desktop)" >"$apps/studio.desktop"
                if command -v update-desktop-database >/dev/null 2>&1; then
                    update-desktop-database -q "$apps" || true
                fi
            fi
            record "$apps/studio.desktop"; record "$icons/studio.svg" ;;
        Darwin)
            local app="$HOME/Applications/Studio.app/Contents"
            run mkdir -p "$app/MacOS"
            if [[ $DRY_RUN == 0 ]]; then
                printf '#!/bin/sh\nexec "%s" gui "$@"\n' "$VENV/bin/studio" >"$app/MacOS/Studio"
                chmod +x "$app/MacOS/Studio"
                printf '%s\n' '<?xml version="1.0" encoding="UTF-8"?>' \
                    '<plist version="1.0"><dict><key>CFBundleName</key><string>Studio</string>' \
                    '<key>CFBundleExecutable</key><string>Studio</string></dict></plist>' >"$app/Info.plist"
            fi
            record "$HOME/Applications/Studio.app" ;;
    esac
}

install() {
    [[ -z "$OFFLINE" ]] || open_bundle
    create_venv
    if [[ -n "$OFFLINE" ]]; then install_offline; else install_online; fi
    if [[ $DEV == 0 ]]; then link_launcher; fi
    if [[ $DESKTOP == 1 ]]; then register_desktop; fi
    install_models
    say "Studio is installed. Start it with: $([[ $DEV == 1 ]] && echo "$VENV/bin/studio" || echo studio)"
    if [[ $MODEL_FAILURES == 1 ]]; then
        echo "install.sh: some models were refused or not downloaded (see above)" >&2
        exit 4
    fi
}

uninstall() {
    [[ -f "$RECORD" ]] || die "nothing to uninstall: $RECORD not found"
    local path models=""
    if [[ $REMOVE_MODELS == 1 ]]; then
        models="$("$VENV/bin/python" -I -c 'from studio.core.paths import models_dir; print(models_dir())')" ||
            die "cannot locate the models folder: the environment in $VENV is broken"
    fi
    while IFS= read -r path; do
        [[ -n "$path" ]] || continue
        say "Removing $path"
        run rm -rf -- "$path"
    done <"$RECORD"
    run rm -f "$RECORD"
    if [[ -n "$models" ]]; then
        say "Removing models in $models"
        run rm -rf -- "$models"
    fi
    [[ $DRY_RUN == 1 || $DEV == 1 ]] || rmdir "$PREFIX" 2>/dev/null || true
    say "Studio is uninstalled. Your images, settings and models were left alone$([[ $REMOVE_MODELS == 1 ]] && echo ", except the models")."
}

parse_args "$@"
if [[ $UNINSTALL == 1 ]]; then uninstall; else install; fi
