"""Mutants reviewed and judged equivalent: no test can tell them from the original code.

Each entry names the module, the original source line (stripped), the mutation and the reason.
Keep this list short and reviewed: a mutant belongs here only when no input a user could give
makes the mutated code behave differently. Anything else is a missing test.
"""

from __future__ import annotations

EQUIVALENT: dict[tuple[str, str, str], str] = {}


def equivalence(module: str, code: str, description: str) -> str | None:
    """Why this mutant is equivalent, or None when it is not listed."""
    return EQUIVALENT.get((module, code, description))
