"""Batch processing shared by the CLI and the window's Batch panel (no Qt here).

A batch is a plan (which inputs make which outputs, in a stable order), a recipe (one or more
steps, each a task, an engine and its parameters) and a run. `run_batch` is a generator of
events that returns a summary: one failing item does not stop the others, closing the
generator cancels at once without leaving a half-written file, and a manifest in the output
folder (a journal that gains one synced line as each item ends, so a crash loses at most the
items in flight) lets a later run with ``resume=True`` skip the items already done.

By concern: `recipes`, `planning`, `runner` (with reading and writing overlapping the
computation) and `journal` (the manifest).
"""

from __future__ import annotations

from studio.engine.batch.journal import (
    MANIFEST_NAME,
    ItemStatus,
    Manifest,
)
from studio.engine.batch.planning import (
    DEFAULT_TEMPLATE,
    BatchItem,
    BatchPlan,
    check_template,
    plan_batch,
)
from studio.engine.batch.recipes import (
    PreparedStep,
    Recipe,
    RecipeStep,
    input_kinds,
    load_recipe,
    merges_images,
    prepare_recipe,
    run_steps,
    save_recipe,
)
from studio.engine.batch.runner import (
    BatchEvent,
    BatchSettings,
    BatchStart,
    BatchSummary,
    ItemFailed,
    ItemFinished,
    ItemProgress,
    ItemSkipped,
    ItemStarted,
    ItemState,
    begin_batch,
    check_result_fits,
    fail_item,
    read_item_inputs,
    read_shared_inputs,
    run_batch,
    unused_inputs,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "MANIFEST_NAME",
    "BatchEvent",
    "BatchItem",
    "BatchPlan",
    "BatchSettings",
    "BatchStart",
    "BatchSummary",
    "ItemFailed",
    "ItemFinished",
    "ItemProgress",
    "ItemSkipped",
    "ItemStarted",
    "ItemState",
    "ItemStatus",
    "Manifest",
    "PreparedStep",
    "Recipe",
    "RecipeStep",
    "begin_batch",
    "check_result_fits",
    "check_template",
    "fail_item",
    "input_kinds",
    "load_recipe",
    "merges_images",
    "plan_batch",
    "prepare_recipe",
    "read_item_inputs",
    "read_shared_inputs",
    "run_batch",
    "run_steps",
    "save_recipe",
    "unused_inputs",
]
