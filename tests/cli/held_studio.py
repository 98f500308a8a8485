"""`python -m tests.cli.held_studio ARGS`: the studio command with one more denoise engine,
`held`. Its first STUDIO_TEST_FINISH_FIRST jobs (default 0) return their input at once; every
later one reports progress until the process is interrupted. A signal test therefore finds
work running however loaded the machine is, and knows exactly which jobs had finished."""

from __future__ import annotations

import itertools
import os
import sys
import time

from studio.core.protocol import EngineSpec, JobInputs, OpRun, Params, Progress, RunContext
from studio.engine import registry

_started = itertools.count()


def run_held(inputs: JobInputs, params: Params, ctx: RunContext) -> OpRun:
    if next(_started) < int(os.environ.get("STUDIO_TEST_FINISH_FIRST", "0")):
        yield Progress(1, 1, "Done")
        return inputs.image.with_pixels(inputs.image.pixels.copy())
    for step in itertools.count():
        yield Progress(step, step + 1, "Held until interrupted")
        time.sleep(0.05)
    raise AssertionError("unreachable")


HELD = EngineSpec(task="denoise", id="held", name="Held", params=Params, run=run_held)


def _build_registry_with_held() -> registry.Registry:
    reg = _build_registry()
    reg.register(HELD)
    return reg


_build_registry = registry.build_registry
registry.build_registry = _build_registry_with_held

if __name__ == "__main__":
    from studio.cli.main import main

    sys.exit(main(sys.argv[1:]))
