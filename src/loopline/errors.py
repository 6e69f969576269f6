"""The one error tree of loopline, sorted by who has to act.

```
LooplineError
├── InvalidDefinitionError(ValueError)   the pipeline/spec author fixes their definition
├── InvalidInputError(ValueError)        the caller fixes the request or the data
│   ├── PathTraversalError               an artifact URI tried to leave its store root
│   └── UnsupportedMediaTypeError        a body's media type or coding is not one read here
├── NotFoundError(LookupError)           the caller named something that does not exist
├── AlreadyExistsError                   the caller tried to create something twice
├── ConflictError                        the object changed under the caller; retry or re-read
├── GateFailedError                      a validation gate (data, model, infra) said no
├── ComponentError                       user code inside a step raised (``raise … from exc``)
├── StepTimeoutError                     a step, a rollout or a wait passed its deadline
├── DependencyMissingError(ImportError)  an optional extra is not installed; the message says how
├── ConfigurationError                   a setting has a bad value; the message names the setting
├── UnauthorizedError                    a control-plane mutation without a valid token
└── BackendError                         the database, file system or cluster misbehaved
```

HTTP status codes are assigned only in the HTTP layers (serving, control plane).
Messages are sentences that name the offending value and the next step; an error about one
field of a definition also carries its path as ``field``
(``InvalidDefinitionError(msg, field="spec.replicas")``), so that no one parses it back out of
the message. A value a user sent is quoted through :func:`shown` (and a name built from user
keys through :func:`clip`), so a message stays short however large the value:
``'xxxx…(1048576 characters)'``.
"""

from __future__ import annotations


class LooplineError(Exception):
    """Root of every error loopline raises on purpose.

    ``field`` is the path of the one definition or request field at fault
    (``spec.strategy.canary.steps[1].pause.duration``), as the message shows it, or None when
    no single field is; the control plane answers it as the JSON error's ``field``. It
    survives pickling (it lives in the instance's ``__dict__``).
    """

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field


class InvalidDefinitionError(LooplineError, ValueError):
    """A pipeline, component or deployment definition breaks a rule; raised when it is built."""


class InvalidInputError(LooplineError, ValueError):
    """A request, an argument or a data file is malformed; the caller must fix it."""


class PathTraversalError(InvalidInputError):
    """An artifact URI points outside the store root (``..``, absolute path, other scheme)."""


class UnsupportedMediaTypeError(InvalidInputError):
    """A request body comes in a media type or content coding the reader does not take
    (e.g. binary tensors labelled ``application/json``); the caller re-sends it as named."""


class NotFoundError(LooplineError, LookupError):
    """The named object (artifact, run, model, version, alias…) does not exist."""


class AlreadyExistsError(LooplineError):
    """An object with the same identity already exists."""


class ConflictError(LooplineError):
    """The object changed concurrently, or the request contradicts its current state."""


class GateFailedError(LooplineError):
    """A validation gate blocked the run: data anomalies, an unblessed model, a failed infra
    check."""


class ComponentError(LooplineError):
    """User code inside a pipeline step raised; the original exception is the ``__cause__``."""


class StepTimeoutError(LooplineError, TimeoutError):
    """A step or a wait exceeded its deadline."""


class DependencyMissingError(LooplineError, ImportError):
    """An optional dependency is missing; the message carries the ``pip install`` to run."""


class ConfigurationError(LooplineError):
    """A setting (``LOOPLINE_*``) or configuration file has an invalid value."""


class UnauthorizedError(LooplineError):
    """A mutation of the control plane came without a valid token."""


class BackendError(LooplineError):
    """The metadata database, the artifact file system or the cluster API failed."""


def require(module: str, extra: str, feature: str) -> None:
    """Raise DependencyMissingError unless ``module`` can be imported.

    Args:
        module: the importable module name (``"skops"``).
        extra: the loopline extra that brings it (``"sklearn"``).
        feature: what needs it, for the message (``"saving scikit-learn models"``).
    """
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise DependencyMissingError(
            f"{feature} needs the {module!r} package, which is not installed. "
            f"Install it with: pip install 'loopline[{extra}]'"
        )


#: How many characters of a user's value an error message quotes.
SHOWN_CHARACTERS = 60


def clip(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` when it has at most ``limit`` characters, else its first ``limit`` and its
    length: ``spec.run.params.xxxx…(1048592 characters)``."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} characters)"


def shown_field(path: str) -> str:
    """A field path quoted in a message (``spec.run.params.<key>``: a user's key may be
    long), clipped like :func:`clip` at 200 characters."""
    return clip(path, 200)


def shown(value: object, limit: int = SHOWN_CHARACTERS) -> str:
    """How an error message quotes ``value`` a user sent: its ``repr``, clipped to ``limit``
    characters with the full length said (a string's own length: ``'xxxx'…(1048576
    characters)``), so a 1 MiB field never makes a 1 MiB message."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}…({len(value)} characters)"
    return clip(repr(value), limit)
