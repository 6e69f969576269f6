"""Every ``LOOPLINE_*`` setting, declared once: name, type, default and meaning.

Only ``loopline.platform`` and ``loopline.cli`` read settings; everything below them receives
explicit arguments (checked by import-linter). Read the environment once with
:meth:`Settings.from_env`; the value is frozen afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from loopline.errors import ConfigurationError, InvalidInputError
from loopline.types import parse_age, parse_byte_size


@dataclass(frozen=True, slots=True)
class Setting:
    """The declaration of one environment variable."""

    env: str
    default: str
    description: str


DECLARED: tuple[Setting, ...] = (
    Setting(
        "LOOPLINE_DB_URL",
        "sqlite:///loopline.db",
        "Metadata database URL: sqlite:///PATH (WAL mode; relative to the working directory) "
        "or postgresql://USER@HOST:PORT/DB.",
    ),
    Setting(
        "LOOPLINE_ARTIFACT_ROOT",
        "loopline_artifacts",
        "Artifact store root: a local directory (relative to the working directory) or any "
        "fsspec URL such as s3://bucket/prefix.",
    ),
    Setting(
        "LOOPLINE_HOME",
        ".loopline",
        "Directory for local state: step logs, the control-plane token and process records.",
    ),
    Setting(
        "LOOPLINE_MAX_WORKERS",
        "2",
        "How many pipeline steps the local runner executes at once.",
    ),
    Setting(
        "LOOPLINE_CONTROLPLANE_URL",
        "",
        "URL of the control plane the CLI talks to; empty means the local one under "
        "LOOPLINE_HOME, started on demand.",
    ),
    Setting(
        "LOOPLINE_USER",
        "",
        "Who is acting, recorded on alias moves and overrides; defaults to the OS user.",
    ),
    Setting(
        "LOOPLINE_CONTROLPLANE_HOSTS",
        "",
        "Comma-separated host names (or addresses) the control plane answers to besides "
        "127.0.0.1, localhost and [::1], such as the name a reverse proxy uses; a request "
        "naming any other Host gets 421. Reads through these names need the token.",
    ),
    Setting(
        "LOOPLINE_TRUSTED_LOADERS",
        "",
        "Comma-separated module:QualName of the python-flavor model loaders a model server may "
        "import (exact names; none by default). See docs/security.md.",
    ),
    Setting(
        "LOOPLINE_TRUSTED_TYPES",
        "",
        "Comma-separated exact type or function names a skops model file may hold beyond "
        "loopline's built-in list (loopline.bundle.TRUSTED_TYPES). See docs/security.md.",
    ),
    Setting(
        "LOOPLINE_PREDICTION_LOG_MAX_BYTES",
        "",
        "Size bound of a prediction-log directory (e.g. 500MB, 2GiB): the default of "
        "loopline serve --log-max-bytes and of replicas whose deployment template sets no "
        "logging.maxBytes. Empty: the server's default (LogOptions.max_bytes).",
    ),
    Setting(
        "LOOPLINE_PREDICTION_LOG_MAX_AGE",
        "",
        "Age after which prediction-log segments are deleted (e.g. 30d, 12h): the default of "
        "loopline serve --log-max-age and of replicas whose deployment template sets no "
        "logging.maxAge. Empty: the server's default (LogOptions.max_age).",
    ),
    Setting(
        "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES",
        "",
        "Bytes a server buffers per log stream and worker before records are dropped (e.g. "
        "64MiB): the default of loopline serve --log-buffer-bytes and of replicas. Empty: "
        "the server's default (LogOptions.buffer_bytes).",
    ),
    Setting(
        "LOOPLINE_ENGINE",
        "local",
        "Where the control plane runs deployments: local (model-server processes on this "
        "machine) or kubernetes (the cluster of the in-cluster service account when "
        "KUBERNETES_SERVICE_HOST is set, else of KUBECONFIG / ~/.kube/config). See "
        "docs/kubernetes.md.",
    ),
    Setting(
        "LOOPLINE_KUBERNETES_NAMESPACE",
        "",
        "Namespace of the deployments of a kubernetes-engine control plane. Empty: the "
        "service account's namespace in-cluster, else the kubeconfig context's.",
    ),
    Setting(
        "LOOPLINE_KUBERNETES_IMAGE",
        "",
        "The loopline image the pods of a kubernetes-engine control plane run. Empty: "
        "loopline:<version>, the tag loopline build gives.",
    ),
    Setting(
        "LOOPLINE_KUBERNETES_GATEWAY",
        "",
        "[NS/]NAME[#LISTENER] of a Gateway API Gateway for canary weights on the kubernetes "
        "engine. Empty: canaries split by replica ratio.",
    ),
    Setting(
        "LOOPLINE_CONTROLPLANE_TOKEN",
        "",
        "The control plane's bearer token, given rather than created (in-cluster it comes "
        "from a Secret); written to $LOOPLINE_HOME/controlplane/token (mode 0600) on start. "
        "Empty: the token file's, created on first start.",
    ),
    Setting(
        "LOOPLINE_ORPHAN_GRACE",
        "",
        "How old an artifact folder no row names must be before loopline gc removes it "
        "(e.g. 1h, 30m). Empty: the sweep's default (loopline.artifacts ORPHAN_GRACE_SECONDS).",
    ),
)

ENGINES = ("local", "kubernetes")
"""The values of ``LOOPLINE_ENGINE``."""

#: The accepted form of each setting that takes a size or an age, shown when it is refused.
_EXAMPLES = {
    "LOOPLINE_PREDICTION_LOG_MAX_BYTES": "64MiB",
    "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES": "64MiB",
    "LOOPLINE_PREDICTION_LOG_MAX_AGE": "30d",
    "LOOPLINE_ORPHAN_GRACE": "1h",
}


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved settings. Relative paths are resolved against the working directory."""

    db_url: str = field(repr=False)  # may hold a password: print redact_url(db_url)
    artifact_root: str
    home: Path
    max_workers: int
    controlplane_url: str
    user: str
    trusted_loaders: tuple[str, ...] = ()
    trusted_types: tuple[str, ...] = ()
    controlplane_hosts: tuple[str, ...] = ()
    prediction_log_max_bytes: int | None = None  # None: the server's own default
    prediction_log_max_age: float | None = None
    prediction_log_buffer_bytes: int | None = None
    orphan_grace: float | None = None  # None: the orphan sweep's own default
    engine: str = "local"  # "local" or "kubernetes"
    kubernetes_namespace: str = ""
    kubernetes_image: str = ""
    kubernetes_gateway: str = ""
    controlplane_token: str = field(default="", repr=False)
    in_cluster: bool = False  # KUBERNETES_SERVICE_HOST is set: running in a pod

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None
    ) -> Settings:
        """Build settings from the environment (``os.environ`` by default).

        Raises:
            ConfigurationError: a value has the wrong type; the message names the variable.
        """
        env = os.environ if environ is None else environ
        base = Path.cwd() if cwd is None else cwd
        raw = {s.env: env.get(s.env, "") or s.default for s in DECLARED}
        db_url = raw["LOOPLINE_DB_URL"]
        if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
            rel = db_url[len("sqlite:///") :]
            db_url = f"sqlite:///{(base / rel).resolve()}"
        root = raw["LOOPLINE_ARTIFACT_ROOT"]
        if "://" not in root:
            root = str((base / root).resolve())
        try:
            max_workers = int(raw["LOOPLINE_MAX_WORKERS"])
            if max_workers < 1:
                raise ValueError
        except ValueError:
            raise ConfigurationError(
                f"LOOPLINE_MAX_WORKERS={raw['LOOPLINE_MAX_WORKERS']!r} is not a positive "
                "integer; set it to 1 or more."
            ) from None
        user = raw["LOOPLINE_USER"] or _os_user()
        engine = raw["LOOPLINE_ENGINE"].strip()
        if engine not in ENGINES:
            raise ConfigurationError(
                f"LOOPLINE_ENGINE={raw['LOOPLINE_ENGINE']!r} is not an engine; set it to "
                f"{' or '.join(ENGINES)}."
            )
        return cls(
            db_url=db_url,
            artifact_root=root,
            home=(base / raw["LOOPLINE_HOME"]).resolve(),
            max_workers=max_workers,
            controlplane_url=raw["LOOPLINE_CONTROLPLANE_URL"],
            user=user,
            trusted_loaders=_names(raw["LOOPLINE_TRUSTED_LOADERS"]),
            trusted_types=_names(raw["LOOPLINE_TRUSTED_TYPES"]),
            controlplane_hosts=_names(raw["LOOPLINE_CONTROLPLANE_HOSTS"]),
            prediction_log_max_bytes=_size(raw, "LOOPLINE_PREDICTION_LOG_MAX_BYTES"),
            prediction_log_max_age=_age(raw, "LOOPLINE_PREDICTION_LOG_MAX_AGE"),
            prediction_log_buffer_bytes=_size(raw, "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES"),
            orphan_grace=_age(raw, "LOOPLINE_ORPHAN_GRACE"),
            engine=engine,
            kubernetes_namespace=raw["LOOPLINE_KUBERNETES_NAMESPACE"].strip(),
            kubernetes_image=raw["LOOPLINE_KUBERNETES_IMAGE"].strip(),
            kubernetes_gateway=raw["LOOPLINE_KUBERNETES_GATEWAY"].strip(),
            controlplane_token=raw["LOOPLINE_CONTROLPLANE_TOKEN"].strip(),
            in_cluster=bool(env.get("KUBERNETES_SERVICE_HOST")),
        )


def _size(raw: Mapping[str, str], env: str) -> int | None:
    """Bytes of a size setting (``64MiB``, ``500MB``, ``1073741824``), None when unset."""
    text = raw[env].strip()
    if not text:
        return None
    try:
        return parse_byte_size(text, env)
    except InvalidInputError:
        raise ConfigurationError(
            f"{env}={raw[env]!r} is not a size of at least 1 byte; write bytes (1073741824) "
            "or a number with a unit, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB "
            f"(powers of 1024), e.g. {env}={_EXAMPLES[env]}."
        ) from None


def _age(raw: Mapping[str, str], env: str) -> float | None:
    """Seconds of an age setting (``30d``, ``12h``, ``90m``, ``45s``), None when unset."""
    text = raw[env].strip()
    if not text:
        return None
    try:
        return parse_age(text, env)
    except InvalidInputError:
        raise ConfigurationError(
            f"{env}={raw[env]!r} is not a positive age; write a number with a unit, s, m, h, "
            f"d or w, or a bare number of seconds, e.g. {env}={_EXAMPLES[env]}."
        ) from None


def _names(text: str) -> tuple[str, ...]:
    """The non-empty entries of a comma-separated list, stripped (checked by their user)."""
    return tuple(sorted({n.strip() for n in text.split(",") if n.strip()}))


_SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "secret", "token", "sslpassword"})


def redact_url(url: str) -> str:
    """``url`` with its password (``user:PASSWORD@host``) and secret query parameters
    (``?password=…``) replaced by ``***``: the form in which a database URL is printed or
    logged. Text that is not a URL comes back unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    user, at, host = parts.netloc.rpartition("@")
    netloc = f"{user.split(':', 1)[0]}:***@{host}" if at and ":" in user else parts.netloc
    query = "&".join(
        f"{k}=***" if eq and k.lower() in _SECRET_PARAMS else f"{k}{eq}{v}"
        for k, eq, v in (item.partition("=") for item in parts.query.split("&"))
    )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _os_user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
