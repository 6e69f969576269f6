"""`loopline serve --repository DIR` and load/unload of registry references: the flags, the
token file, what each server's source is, and the registry's digest on every load."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from loopline.bundle import infer_signature, save_model, tree_digest
from loopline.cli.main import cli
from loopline.cli.registry_source import RegistrySource
from loopline.cli.serve import serve
from loopline.cli.serve_process import load_models, repository_options
from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata import open_store
from loopline.registry import ModelRegistry
from loopline.serving import (
    FolderRepository,
    LoadParameters,
    LoadSpec,
    ServeCommand,
    ServerOptions,
    create_app,
)
from loopline.settings import Settings
from tests.cli.test_serve_trust import _register, _settings
from tests.serving.conftest import ThreadedServer

TOKEN = "cli-token-0123456789abcdef-xyz"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    x, y = load_iris(return_X_y=True)
    root = tmp_path_factory.mktemp("iris")
    out = {}
    for name, c in (("v1", 1.0), ("v2", 0.01)):
        model = LogisticRegression(C=c, max_iter=500).fit(x, y)
        out[name] = save_model(model, root / name, signature=infer_signature(x),
                               input_example=x[:2])  # fmt: skip
    return out


@pytest.fixture()
def repo(tmp_path: Path, bundles: dict[str, Path]) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(bundles["v1"], root / "iris" / "1")
    shutil.copytree(bundles["v2"], root / "iris" / "2")
    shutil.copytree(bundles["v1"], root / "other" / "7")
    return root


def _token_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(mode)
    return path


# ---------------------------------------------------------------------------------- flags
def test_repository_flags_round_trip_through_argv(tmp_path: Path) -> None:
    command = ServeCommand(models=(), repository=tmp_path / "repo",
                           repository_digests=tmp_path / "d.txt",
                           repository_token_file=tmp_path / "t", workers=2)  # fmt: skip
    argv = command.to_argv()
    assert argv[:2] == ["--workers", "2"] and "--repository-digests" in argv
    assert ServeCommand.from_argv(argv) == command
    open_ = ServeCommand(models=("taxi@champion",), repository_allow_unauthenticated=True)
    assert open_.to_argv() == ["taxi@champion", "--repository-allow-unauthenticated"]
    assert ServeCommand.from_argv(open_.to_argv()) == open_
    for parsed in (command, open_):  # loopline serve (click) reads the same argv the same way
        params = dict(serve.make_context("serve", parsed.to_argv()).params)
        assert ServeCommand(models=params.pop("model_refs"), **params) == parsed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, r"MODEL_REF is missing: .* or --repository DIR\."),
        ({"models": ("taxi",), "repository": "r", "allow_unverified": True},
         r"--repository serves the models of 'r'; MODEL_REFs \['taxi'\] cannot be added"),
        ({"repository": "r"}, r"needs --repository-digests FILE .* or --allow-unverified"),
        ({"repository": "r", "repository_digests": "d", "allow_unverified": True},
         r"needs --repository-digests FILE .* pass one of them"),
        ({"repository": "r", "allow_unverified": True, "name": "x"},
         r"--name applies to one model directory given as MODEL_REF"),
        ({"models": ("taxi",), "repository_digests": "d"}, r"--repository-digests checks the "
         r"versions of a model repository; add --repository DIR"),
        ({"models": ("taxi",), "repository_token_file": "t",
          "repository_allow_unauthenticated": True}, r"contradict each other"),
        ({"models": ("taxi",), "repository_allow_unauthenticated": "yes"}, r"is on or off"),
    ],
)  # fmt: skip
def test_contradictory_repository_flags_are_refused_naming_them(
    kwargs: dict[str, object], message: str
) -> None:
    kwargs.setdefault("models", ())
    with pytest.raises(InvalidInputError, match=message):
        ServeCommand(**kwargs)  # type: ignore[arg-type]


def test_loopline_serve_shows_the_repository_flags_and_needs_a_model_or_a_folder() -> None:
    runner = CliRunner()
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    for flag in ("--repository ", "--repository-digests", "--repository-token-file",
                 "--repository-allow-unauthenticated"):  # fmt: skip
        assert flag in help_text
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code != 0
    assert "MODEL_REF is missing" in result.output and "--repository DIR" in result.output


# ------------------------------------------------------------------------- the sources
def test_a_repository_serves_the_newest_version_of_each_model(
    tmp_path: Path, repo: Path
) -> None:
    command = ServeCommand(models=(), repository=repo, allow_unverified=True)
    served = load_models(command, _settings(tmp_path))
    assert [(s.name, s.version) for s in served] == [("iris", "2"), ("other", "7")]
    digests = tmp_path / "digests.txt"
    digests.write_text(f"iris/2 {tree_digest(repo / 'iris' / '1')}\n")
    checked = ServeCommand(models=(), repository=repo, repository_digests=digests)
    with pytest.raises(InvalidInputError, match="has digest sha256:.* but the registry recorded"):
        load_models(checked, _settings(tmp_path))
    digests.write_text(
        f"iris/2 {tree_digest(repo / 'iris' / '2')}\nother/7 {tree_digest(repo / 'other' / '7')}"
    )
    assert len(load_models(checked, _settings(tmp_path))) == 2


def test_each_kind_of_server_gets_its_source_and_its_token(
    tmp_path: Path, repo: Path, iris_dir: Path
) -> None:
    settings = _settings(tmp_path)
    folder = repository_options(
        ServeCommand(models=(), repository=repo, allow_unverified=True,
                     repository_token_file=_token_file(tmp_path)), settings)  # fmt: skip
    assert isinstance(folder.source, FolderRepository) and folder.token == TOKEN
    assert folder.mutable
    registry = repository_options(ServeCommand(models=("iris@champion", "other/2")), settings)
    assert isinstance(registry.source, RegistrySource) and registry.source.names() == [
        "iris", "other"
    ]  # fmt: skip
    assert not registry.mutable  # no token, not allowed unauthenticated: load/unload are off
    directories = ServeCommand(models=(str(iris_dir),), allow_unverified=True)
    assert repository_options(directories, settings).source is None
    with_token = ServeCommand(models=(str(iris_dir),), allow_unverified=True,
                              repository_token_file=_token_file(tmp_path))  # fmt: skip
    with pytest.raises(InvalidInputError, match="model directories are not loaded or unloaded"):
        repository_options(with_token, settings)
    shared = ServeCommand(models=("iris",), repository_token_file=_token_file(tmp_path, 0o644))
    with pytest.raises(InvalidInputError, match="has mode 644; it must be readable by its owner"):
        repository_options(shared, settings)


@pytest.fixture()
def iris_dir(tmp_path: Path, bundles: dict[str, Path]) -> Path:
    return shutil.copytree(bundles["v1"], tmp_path / "iris")


def _registered(tmp_path: Path, bundles: dict[str, Path]) -> Settings:
    """iris versions 1 and 2, champion → 1."""
    settings = _settings(tmp_path)
    _register(settings, "iris", bundles["v1"])
    _register(settings, "iris", bundles["v2"])
    _move(settings, "champion", 1)
    return settings


def _move(settings: Settings, alias: str, version: int) -> None:
    from loopline.artifacts import FsspecArtifactStore

    metadata = open_store(settings.db_url)
    try:
        registry = ModelRegistry(metadata, FsspecArtifactStore(settings.artifact_root))
        registry.set_alias("iris", alias, version, who="test", why="repository test")
    finally:
        metadata.close()


def test_the_registry_source_resolves_by_reference_and_loads_by_version(
    tmp_path: Path, bundles: dict[str, Path]
) -> None:
    from loopline.bundle import Trust

    settings = _registered(tmp_path, bundles)
    source = RegistrySource(settings, Trust(), ["iris@champion"])
    assert source.resolve("iris", LoadParameters()) == LoadSpec("iris", "1", ("champion",))
    assert source.resolve("iris", LoadParameters(version="2")) == LoadSpec("iris", "2")
    _move(settings, "champion", 2)
    spec = source.resolve("iris", LoadParameters())
    assert spec == LoadSpec("iris", "2", ("champion",))
    served = source.load(spec)
    assert (served.name, served.version, served.aliases) == ("iris", "2", ("champion",))
    assert served.model.digest == tree_digest(bundles["v2"])
    with pytest.raises(NotFoundError, match="'nope'"):
        source.resolve("nope", LoadParameters())
    with pytest.raises(NotFoundError):
        source.resolve("iris", LoadParameters(alias="staging"))
    with pytest.raises(InvalidInputError, match="Model name 'a b' is not valid"):
        source.resolve("a b", LoadParameters())


def test_a_registered_version_whose_bytes_changed_is_not_loaded(
    tmp_path: Path, bundles: dict[str, Path]
) -> None:
    from loopline.bundle import Trust

    settings = _registered(tmp_path, bundles)
    source = RegistrySource(settings, Trust(), ["iris@champion"])
    spec = source.resolve("iris", LoadParameters(version="2"))
    original = (bundles["v2"] / "model.skops").read_bytes()
    (stored,) = (p for p in (tmp_path / "artifacts").rglob("model.skops")
                 if p.read_bytes() == original)  # fmt: skip
    stored.write_bytes(stored.read_bytes() + b"\0")
    with pytest.raises(InvalidInputError, match="but the registry recorded"):
        source.load(spec)


def test_a_registry_server_loads_the_version_an_alias_moved_to(
    tmp_path: Path, bundles: dict[str, Path]
) -> None:
    from loopline.bundle import Trust

    settings = _registered(tmp_path, bundles)
    source = RegistrySource(settings, Trust(), ["iris@champion"])
    command = ServeCommand(models=("iris@champion",),
                           repository_token_file=_token_file(tmp_path))  # fmt: skip
    options = ServerOptions(repository=repository_options(command, settings))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with ThreadedServer(create_app(source.load_all(), options=options)) as s, \
            httpx.Client(base_url=s.url, timeout=60) as c:  # fmt: skip
        assert c.get("/v2/models/iris/versions/champion").json()["versions"] == ["1"]
        _move(settings, "champion", 2)
        response = c.post("/v2/repository/models/iris/load", headers=auth)
        assert response.json() == {"name": "iris", "version": "2", "state": "READY",
                                   "reason": ""}  # fmt: skip
        assert c.get("/v2/models/iris/versions/champion").json()["versions"] == ["2"]
        pinned = c.post("/v2/repository/models/iris/load", headers=auth,
                        json={"parameters": {"version": 1}})  # fmt: skip
        assert pinned.json()["version"] == "1"
        assert c.get("/v2/models/iris/versions/champion").status_code == 404
        unknown = c.post("/v2/repository/models/taxi/load", headers=auth)
        assert unknown.status_code == 404 and "'taxi'" in unknown.json()["error"]
