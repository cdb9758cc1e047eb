"""The closest valid name to a misspelt one, for the errors that refuse an unknown key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: object, known: Iterable[str]) -> str | None:
    """The known name nearest ``name`` in spelling, or None when none is near."""
    if not isinstance(name, str):
        return None
    known = [k for k in known if isinstance(k, str)]
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not matches:
        # A name that differs only in case or in '-' against '_' is always meant.
        folded = {k.lower().replace("-", "_"): k for k in known}
        return folded.get(name.lower().replace("-", "_"))
    return matches[0]


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the known name nearest ``name``, or ``""``: written in
    front of the list of what is allowed."""
    match = closest(name, known)
    return f"did you mean {match!r}? " if match is not None else ""
