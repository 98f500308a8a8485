"""The `studio` command: parse the command line, run a command, turn errors into exit codes.

Exit codes: 0 success, 1 unexpected error, 2 usage, 3 bad input, 4 model problem,
5 out of memory, 130 cancelled.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from studio import __version__
from studio.cli import commands
from studio.cli.report import JsonReporter, Reporter
from studio.core.errors import CancelledError, StudioError
from studio.core.paths import log_dir
from studio.core.protocol import INPUT_KINDS, PRECISIONS, TASKS, InputForm
from studio.engine.batch import DEFAULT_TEMPLATE

MIN_TILE = 64  # smaller tiles cost more in overlap than they save in memory

EXAMPLES = """\
examples:
  studio                                     open the window
  studio run denoise photo.jpg -o clean.jpg --param sigma=2
  studio run hdr dark.tif mid.tif bright.tif -o merged.exr
  studio batch denoise ~/Pictures/shoot -o ~/Pictures/clean --recursive
  studio batch --recipe recipe.toml shoot/ -o out/ --resume
  studio engines --json
"""


_LIBRARY_LOGGERS = ("py.warnings", "tifffile")


def _models_cli() -> ModuleType | None:
    """The `models` sub-command, when this installation has it."""
    try:
        return importlib.import_module("studio.cli.models")
    except ModuleNotFoundError as err:
        if err.name != "studio.cli.models":
            raise
        return None


def _tile(text: str) -> int:
    value = int(text)
    if value < MIN_TILE:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_TILE} pixels, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, not {text}")
    return value


def _opacity(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _job_options() -> argparse.ArgumentParser:
    """Options shared by `run` and `batch`."""
    parent = argparse.ArgumentParser(add_help=False)
    job = parent.add_argument_group("job options")
    job.add_argument("--engine", metavar="ID", help="engine to use (default: the task's default)")
    job.add_argument("--model", metavar="PATH", help="model file for a neural engine")
    job.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="engine parameter; repeat for several (see `studio engines`)",
    )
    for kind in INPUT_KINDS:
        if kind.form is not InputForm.BRACKETS:
            job.add_argument(f"--{kind.name}", metavar="FILE", help=kind.help)
    job.add_argument(
        "--input",
        metavar="NAME=FILE",
        action="append",
        default=[],
        help="an input of another kind an engine takes; repeat for several",
    )
    job.add_argument("--region", metavar="FILE", help="grayscale mask limiting where it applies")
    job.add_argument(
        "--opacity", type=_opacity, default=1.0, metavar="F", help="strength 0..1 (default 1)"
    )
    job.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "mps"),
        default="auto",
        help="where neural engines run (auto: CUDA, then MPS, then CPU)",
    )
    job.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="neural engines' arithmetic (auto: half precision on a GPU only for 8-bit output "
        "where the model agrees with float32)",
    )
    job.add_argument(
        "--tile", type=_tile, metavar="N", help=f"tile size in pixels (at least {MIN_TILE})"
    )
    job.add_argument("--bit-depth", type=int, choices=(8, 16, 32), help="output bit depth")
    job.add_argument("--quality", type=_quality, default=95, metavar="N", help="JPEG/WebP 1-100")
    job.add_argument("--max-pixels", type=_positive_int, metavar="N", help="refuse larger images")
    job.add_argument("--json", action="store_true", help="print one JSON object per line")
    job.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks of unexpected errors",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Studio: an offline AI photo studio. Without a command, opens the window.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"studio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the window")
    gui.add_argument("files", nargs="*", metavar="FILES", help="images to open")

    job_options = _job_options()
    run = sub.add_parser(
        "run",
        parents=[job_options],
        help="run one task on one image (several for hdr)",
        description="Run TASK on INPUT and write OUTPUT. hdr takes several inputs.",
    )
    run.add_argument("task", choices=TASKS, metavar="TASK", help=", ".join(TASKS))
    run.add_argument("inputs", nargs="+", metavar="INPUT")
    run.add_argument("-o", "--output", required=True, metavar="OUTPUT")
    run.add_argument(
        "--save-kernel",
        metavar="FILE",
        help="write the blur kernel the engine estimated (deblur) as .png or .npy; "
        "give it back with --param kernel=FILE",
    )

    batch = sub.add_parser(
        "batch",
        parents=[job_options],
        help="run a task or a recipe over files and folders",
        description=(
            "Run TASK (or the steps of --recipe, then without TASK) on every supported image "
            "in INPUTS and write the results into OUT_DIR. One failure does not stop the others; "
            "the exit code is 0 when every image succeeded, else that of the first failure. "
            "When the engine merges several images (hdr), the images of each folder form one set."
        ),
        usage="studio batch [TASK] INPUTS... -o OUT_DIR [options]",
    )
    batch.add_argument("items", nargs="+", metavar="[TASK] INPUTS")
    batch.add_argument("-o", "--out-dir", required=True, metavar="OUT_DIR")
    batch.add_argument("-r", "--recursive", action="store_true", help="include subfolders")
    batch.add_argument("--recipe", metavar="FILE", help="JSON or TOML list of steps")
    batch.add_argument(
        "--resume", action="store_true", help="skip items a previous run already finished"
    )
    batch.add_argument(
        "--name",
        default=DEFAULT_TEMPLATE,
        metavar="TEMPLATE",
        help="output name from {stem}, {task}, {engine} (default: %(default)s)",
    )
    batch.add_argument("--format", metavar="EXT", help="output format, e.g. png, jpg, tif")
    batch.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run on a Ray cluster (e.g. 10.0.0.5:6379 or ray://host:10001; 'local' starts Ray "
        "here); the nodes must see the same paths unless --ship is given",
    )
    batch.add_argument(
        "--ship",
        action="store_true",
        help="with --cluster: send each item's files to the workers and write the results here",
    )

    engines = sub.add_parser("engines", help="list tasks, engines and their availability")
    engines.add_argument("task", nargs="?", choices=TASKS, metavar="TASK", help="only this task")
    engines.add_argument("--json", action="store_true", help="print one JSON object")

    models = _models_cli()
    if models is not None:
        models.add_parser(sub)
    return parser


def _library_warnings_to_log() -> None:
    """Send third-party warnings (Python warnings of Pillow, numpy...; tifffile's log) to
    studio.log in the log folder, not to the terminal; OpenCV's console only shows errors."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    logging.captureWarnings(True)
    loggers = [logging.getLogger(name) for name in _LIBRARY_LOGGERS]
    if loggers[0].handlers:
        return
    try:
        log_dir().mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(
            log_dir() / "studio.log", delay=True, encoding="utf-8"
        )
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for logger in loggers:
        logger.propagate = False
        logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `studio` command with `argv` (default: the process's arguments)."""
    _library_warnings_to_log()
    parser = build_parser()
    try:
        args = parser.parse_args(_files_open_the_window(parser, argv))
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    reporter: Reporter = JsonReporter() if getattr(args, "json", False) else Reporter()
    try:
        return _dispatch(args, reporter)
    except StudioError as err:
        reporter.error(str(err), err.exit_code)
        return err.exit_code
    except KeyboardInterrupt:
        cancelled = CancelledError()
        reporter.error(str(cancelled), cancelled.exit_code)
        return cancelled.exit_code
    except Exception as err:
        reporter.error(f"Unexpected error: {type(err).__name__}: {err}", 1)
        if args.debug:
            traceback.print_exc()
        else:
            print("studio: run again with --debug for details", file=sys.stderr)
        return 1
    finally:
        reporter.close()


def _files_open_the_window(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> list[str]:
    """`studio photo.jpg` (what a file manager or a user types) means `studio gui photo.jpg`."""
    args = list(sys.argv[1:] if argv is None else argv)
    first = args[0] if args else "-"
    if not first.startswith("-") and first not in _commands(parser) and Path(first).is_file():
        return ["gui", *args]
    return args


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    return {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }


def _dispatch(args: argparse.Namespace, reporter: Reporter) -> int:
    command = args.command
    if command in (None, "gui"):
        return commands.launch_gui(getattr(args, "files", []))
    if command == "run":
        return commands.run(args, reporter)
    if command == "batch":
        return commands.batch(args, reporter)
    if command == "engines":
        return commands.engines(args, reporter)
    models = _models_cli()
    if command == "models" and models is not None:
        return int(models.run(args))
    raise AssertionError(f"unhandled command {command!r}")
