"""What a bundle may make the loading process run: the operator's trust, passed to ``load_model``.

Loading a model is running code: skops instantiates the types a ``.skops`` file names, and a
``python``-flavor bundle names a ``module:QualName`` whose ``load`` is called. Neither is
decided by the bundle:

- skops files may instantiate what skops trusts by default (scikit-learn estimators, NumPy
  ufuncs, builtin containers) plus the exact types and functions in :data:`TRUSTED_TYPES` —
  what the estimators the Trainer supports need, found with ``skops.io.get_untrusted_types``
  on fitted models (``docs/security.md`` lists how) — plus the operator's
  ``Trust.types``. A type is trusted by its full name, never by its top-level module:
  ``numpy.save`` is not trusted because ``numpy.dtype`` is.
- a ``python``-flavor loader is imported only when it is in ``Trust.loaders`` (exact
  ``module:QualName`` strings); none is trusted by default.

The composition root fills :class:`Trust` from ``LOOPLINE_TRUSTED_LOADERS`` and
``LOOPLINE_TRUSTED_TYPES`` (see :mod:`loopline.settings`); this module reads no setting.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from loopline.errors import InvalidInputError

#: The skops setting and the python-flavor setting an operator changes (named in errors).
TYPES_SETTING = "LOOPLINE_TRUSTED_TYPES"
LOADERS_SETTING = "LOOPLINE_TRUSTED_LOADERS"

#: Types and functions outside skops' own defaults that fitted scikit-learn models hold:
#: linear models, trees, forests, (histogram) gradient boosting, k-neighbours, SVMs, naive
#: Bayes, isotonic and dummy models, with Pipeline/ColumnTransformer preprocessing (scalers,
#: encoders, imputers). Exact names; extending it for a deployment is ``TYPES_SETTING``.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.tree._tree.Tree",
    }
)

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_TYPE = re.compile(_DOTTED)
_LOADER = re.compile(f"{_DOTTED}:{_DOTTED}")


def _checked(
    kind: str, pattern: re.Pattern[str], example: str, values: Iterable[str]
) -> frozenset[str]:
    out = set()
    for value in values:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise InvalidInputError(
                f"Trusted {kind} {value!r} is not an exact name like {example!r}; list each "
                "one by its full name (no wildcards, no spaces)."
            )
        out.add(value)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Trust:
    """What the operator trusts a bundle to run, beyond loopline's built-in list.

    Attributes:
        loaders: ``module:QualName`` of the ``python``-flavor loaders that may be imported.
        types: extra exact skops type or function names (``package.module.Name``).

    Raises:
        InvalidInputError: an entry is not an exact name; the message names it.
    """

    loaders: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        loaders = _checked("loader", _LOADER, "my_project.models:Centroids", self.loaders)
        set_(self, "loaders", loaders)
        set_(self, "types", _checked("type", _TYPE, "sklearn.tree._tree.Tree", self.types))

    @property
    def skops_types(self) -> frozenset[str]:
        """Every type a skops file may hold beyond skops' own defaults."""
        return TRUSTED_TYPES | self.types

    def check_loader(self, loader: str, source: str) -> None:
        """Raise unless ``loader`` (named by the bundle at ``source``) is trusted.

        Raises:
            InvalidInputError: names the loader and the setting to change.
        """
        if loader in self.loaders:
            return
        trusted = sorted(self.loaders)
        raise InvalidInputError(
            f"Bundle {source} names loader {loader!r}, which is not a trusted loader "
            f"(trusted: {trusted}); loopline imports only the python-flavor loaders an "
            f"operator trusts. If you trust the code of {loader!r}, add it to "
            f"{LOADERS_SETTING} (comma-separated module:QualName)."
        )

    def check_types(self, found: Iterable[str], source: str) -> list[str]:
        """The types of a skops file at ``source`` as skops' ``trusted`` list, all trusted.

        Raises:
            InvalidInputError: names the first untrusted type and the setting to change.
        """
        found = sorted(set(found))
        trusted = self.skops_types
        refused = [t for t in found if t not in trusted]
        if refused:
            raise InvalidInputError(
                f"{source} contains type {refused[0]!r}"
                + (f" (and {len(refused) - 1} more: {refused[1:4]})" if len(refused) > 1 else "")
                + ", which is not a trusted type; loopline does not load it. Re-save the model "
                "with scikit-learn estimators only, or, if you trust that exact type or "
                f"function, add it to {TYPES_SETTING} (comma-separated full names)."
            )
        return found


#: loopline's own list only: skops' defaults and :data:`TRUSTED_TYPES`; no python loader.
BUILT_IN_TRUST = Trust()
