"""Learning a case's reference configuration: replay the reference case's test function.

A case computes its reference's videos itself (so any subset, order or worker gives the
same numbers), and needs the reference's configuration for that. It calls the test function
again with the reference case's parameters and an ``ablation`` object that, at the matching
``ablation.run`` call, raises ``ReferenceCaptured`` with that call's generator and
configuration instead of running it. The test body above that call must therefore be cheap
and free of side effects (building a configuration, not computing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import AblationError

if TYPE_CHECKING:
    from .catalog import Case, Catalog


class ReferenceCaptured(Exception):
    """Raised by the replaying ``ablation`` object at the call it was replayed for."""

    def __init__(self, generator: Any, config: dict[str, Any]):
        super().__init__("reference configuration captured")
        self.generator = generator
        self.config = config


class _Missing:
    pass


_MISSING = _Missing()


def replay_reference(
    item: Any,
    case: Case,
    catalog: Catalog,
    call: int,
    *,
    current: object,
    replaying: Callable[[Case], object],
) -> tuple[Any, dict[str, Any]]:
    """The generator and configuration of the reference case's ``ablation.run`` call number
    ``call``. ``current`` is the case's own ``ablation`` object, replaced in the replayed call
    by ``replaying(reference)``, the object that captures the call."""
    reference = catalog.reference_of(case)
    differing = {
        name
        for name in set(reference.params) | set(case.params)
        if reference.params.get(name, _MISSING) != case.params.get(name, _MISSING)
    }
    indirect = sorted(differing - case.direct_params)
    if indirect:
        raise AblationError(
            f"{case.nodeid}: the reference {reference.variant!r} differs in "
            f"{', '.join(indirect)}, which is not a direct parametrize argument; the "
            "reference's configuration can only be replayed from direct arguments"
        )
    kwargs = {name: item.funcargs[name] for name in item._fixtureinfo.argnames if name in item.funcargs}
    for name in differing:
        kwargs[name] = reference.params[name]
    replay = replaying(reference)
    for name, value in list(kwargs.items()):
        if isinstance(value, type(current)):
            kwargs[name] = replay
    try:
        item.obj(**kwargs)
    except ReferenceCaptured as captured:
        return captured.generator, captured.config
    except Exception as error:
        raise AblationError(
            f"{case.nodeid}: replaying the reference case {reference.variant!r} to learn "
            f"its configuration failed before its ablation.run call #{call}: {error!r}"
        ) from error
    raise AblationError(
        f"{case.nodeid}: the reference case {reference.variant!r} makes fewer than "
        f"{call} ablation.run call(s), so call #{call} of this case has no reference"
    )
