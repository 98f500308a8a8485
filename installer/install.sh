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

usage() {
    cat <<'EOF'
Usage: install.sh [options]
       install.sh uninstall [--remove-models]

Installs Studio into its own virtual environment, links `studio` into ~/.local/bin
and registers a desktop entry with the app icon.

Options:
  --dev                 developer install: editable, in .venv of this checkout, with test tools;
                        no launcher or desktop entry (run .venv/bin/studio)
  --offline BUNDLE      install from an offline bundle (.tar or folder) with no network at all
  --models ID...        download these catalog models after installing (needs network)
  --models-from DIR     copy and verify the model files in DIR into the models folder
  --cpu-torch URL       install torch from this CPU-only wheel index (smaller than the default)
  --prefix DIR          where the environment goes (default: ~/.local/share/studio)
  --python EXE          the Python 3.11+ interpreter to use
  --no-desktop          do not register a desktop entry or launcher
  --no-deps             install Studio alone, not its dependencies (reinstalling Studio itself)
  --dry-run             print what would be done, change nothing
  -h, --help            show this help

Environment: STUDIO_PREFIX, STUDIO_BIN_DIR, XDG_DATA_HOME, PYTHON.
EOF
}

die() { echo "install.sh: $*" >&2; exit 2; }
say() { echo "==> $*"; }
run() { if [[ $DRY_RUN == 1 ]]; then echo "+ $*"; else "$@"; fi; }

DEV=0 OFFLINE="" MODELS=() MODELS_FROM="" CPU_TORCH="" DESKTOP=1 NO_DEPS=0 DRY_RUN=0
UNINSTALL=0 REMOVE_MODELS=0

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
            --models-from) [[ $# -ge 2 ]] || die "--models-from needs a folder"; MODELS_FROM="$2"; shift ;;
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
    [[ -z "$OFFLINE" || ${#MODELS[@]} -eq 0 ]] || die "--offline and --models exclude each other: put the models in the bundle"
    [[ -z "$OFFLINE" || $DEV == 0 ]] || die "--offline and --dev exclude each other"
    [[ -z "$MODELS_FROM" || -d "$MODELS_FROM" ]] || die "--models-from: no such folder: $MODELS_FROM"
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

has_nvidia_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

create_venv() {
    if [[ -x "$VENV/bin/python" ]]; then
        say "Reusing the environment in $VENV"
    else
        say "Creating the environment in $VENV"
        run mkdir -p "$PREFIX"
        run "$(find_python)" -m venv "$VENV"
    fi
}

pip_install() { run "$VENV/bin/python" -m pip install --disable-pip-version-check "$@"; }

install_online() {
    local target="$SOURCE" extras="" args=(-c "$HERE/constraints.txt")
    [[ $DEV == 1 ]] && extras="[dev]"
    if [[ -n "$CPU_TORCH" ]]; then
        say "Installing the CPU build of torch from $CPU_TORCH"
        pip_install "${args[@]}" --index-url "$CPU_TORCH" torch torchvision
    elif has_nvidia_gpu; then
        say "NVIDIA GPU found: installing torch with CUDA"
    fi
    if [[ $DEV == 1 ]]; then args+=(-e); fi
    [[ $NO_DEPS == 1 ]] && args=(--no-deps "${args[@]}")
    say "Installing Studio$extras"
    pip_install "${args[@]}" "$target$extras"
}

install_offline() {
    local bundle="$OFFLINE" dir
    [[ -e "$bundle" ]] || die "--offline: no such bundle: $bundle"
    if [[ -f "$bundle" ]]; then
        dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
        say "Unpacking $bundle"
        run tar -xf "$bundle" -C "$dir"
        bundle="$dir/$(ls "$dir" | head -n 1)"
    fi
    say "Verifying the bundle"
    run "$(find_python)" "$HERE/bundle.py" verify "$bundle"
    local deps=()
    [[ $NO_DEPS == 1 ]] && deps=(--no-deps)
    say "Installing Studio from the bundle (no network)"
    PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
        pip_install --no-index --find-links "$bundle/wheels" "${deps[@]}" studio
    if [[ -d "$bundle/models" && -z "$MODELS_FROM" ]]; then MODELS_FROM="$bundle/models"; fi
    [[ -z "$MODELS_FROM" ]] || install_models_from
}

install_models_from() {
    say "Importing models from $MODELS_FROM"
    run "$VENV/bin/studio" models import "$MODELS_FROM"
}

record() { [[ $DRY_RUN == 1 ]] || echo "$1" >>"$RECORD.new"; }

link_launcher() {
    run mkdir -p "$BIN_DIR"
    run ln -sfn "$VENV/bin/studio" "$BIN_DIR/studio"
    record "$BIN_DIR/studio"
    case ":$PATH:" in *":$BIN_DIR:"*) ;; *) say "Add $BIN_DIR to your PATH to run \`studio\`" ;; esac
}

register_desktop() {
    local icon="$SOURCE/resources/studio.svg"
    case "$(uname -s)" in
        Linux)
            local apps="$DATA_HOME/applications" icons="$DATA_HOME/icons/hicolor/scalable/apps"
            run mkdir -p "$apps" "$icons"
            run cp "$icon" "$icons/studio.svg"
            if [[ $DRY_RUN == 0 ]]; then
                sed "s|^Exec=.*|Exec=$VENV/bin/studio gui %F|" "$SOURCE/resources/studio.desktop" >"$apps/studio.desktop"
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
    create_venv
    if [[ -n "$OFFLINE" ]]; then install_offline; else install_online; fi
    if [[ -n "$MODELS_FROM" && -z "$OFFLINE" ]]; then install_models_from; fi
    local id
    for id in "${MODELS[@]}"; do run "$VENV/bin/studio" models download "$id"; done
    rm -f "$RECORD.new"
    record "$VENV"
    if [[ $DEV == 0 ]]; then link_launcher; fi
    if [[ $DESKTOP == 1 ]]; then register_desktop; fi
    [[ $DRY_RUN == 1 ]] || mv "$RECORD.new" "$RECORD"
    say "Studio is installed. Start it with: $([[ $DEV == 1 ]] && echo "$VENV/bin/studio" || echo studio)"
}

uninstall() {
    [[ -f "$RECORD" ]] || die "nothing to uninstall: $RECORD not found"
    local path models=""
    if [[ $REMOVE_MODELS == 1 ]]; then
        models="$("$VENV/bin/python" -c 'from studio.core.paths import models_dir; print(models_dir())')" ||
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
    say "Studio is uninstalled. Your images, settings and models were left alone$([[ $REMOVE_MODELS == 1 ]] && echo ", except the models")."
}

parse_args "$@"
if [[ $UNINSTALL == 1 ]]; then uninstall; else install; fi
