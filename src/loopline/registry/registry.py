"""``ModelRegistry``: named models, numbered versions and movable aliases, with lineage.

Versions are rows the metadata store numbers atomically (``create_model_version``). Every
alias move — set, unset, undo — is an ``AliasMove`` execution in the metadata store, with
INPUT events from the model artifact (port ``model``) and each evidence artifact (port
``evidence``), associated to the model's context (type ``model``, named after the model). So
"why is v7 champion?" is a lineage query, and undo replays the history.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from loopline.artifacts.store import ArtifactStore
from loopline.errors import InvalidInputError, LooplineError, NotFoundError
from loopline.metadata.entities import (
    Event,
    EventType,
    ExecutionState,
    ModelAlias,
    ModelVersion,
    check_alias_expect,
    check_alias_expected,
)
from loopline.metadata.store import MetadataStore
from loopline.registry._checks import (
    alias_listing,
    check_actor,
    check_evidence,
    check_registrable,
    pick_version,
    registered_versions,
)
from loopline.registry.entities import (
    ALIAS_MOVE_TYPE,
    MODEL_CONTEXT_TYPE,
    REGISTRATION_TYPE,
    RESERVED_ALIASES,
    AliasAction,
    AliasMove,
    ModelSummary,
    RegisteredModel,
    ResolvedModel,
)
from loopline.types import ArtifactId, JsonDict, ModelRef, check_name


class ModelRegistry:
    """Models, versions and aliases over a metadata store and an artifact store.

    Args:
        metadata: where versions, aliases and the alias-move executions are recorded.
        artifacts: where model bytes live; ``register`` checks they are published.

    Example:
        >>> registry = ModelRegistry(metadata, artifacts)
        >>> v = registry.register("taxi", model_id, who="ci", why="nightly run 12")
        >>> registry.set_alias("taxi", "champion", v.version, who="ana", why="beat v6",
        ...                    evidence=[blessing_id])
        >>> registry.resolve("taxi@champion").artifact.uri

    Concurrency: versions are numbered atomically by the metadata store, across threads and
    processes. Alias moves are serialised per registry object; moves of the same alias from
    different processes at the same instant are last-writer-wins (each is still recorded)
    unless they pass ``expect``: then the move is a compare-and-set in one database
    transaction, and every loser gets a ConflictError naming the version the alias is at.
    """

    def __init__(self, metadata: MetadataStore, artifacts: ArtifactStore) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self._alias_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ModelRegistry({self.metadata!r}, {self.artifacts!r})"

    # ---- versions --------------------------------------------------------------------------

    def register(
        self, name: str, artifact_id: ArtifactId, *, description: str = "", who: str, why: str
    ) -> ModelVersion:
        """Register a LIVE ``Model`` artifact as the next version of ``name``.

        The artifact is attributed to the model's context, and the registration is recorded
        as a ``ModelRegistration`` execution (who, why, version) reading the artifact.

        Raises:
            InvalidInputError: bad name, who/why, or the artifact is not a LIVE ``Model``
                with a digest whose bytes are published.
            NotFoundError: no artifact has this id.
        """
        check_name("Model", name)
        who, why = check_actor(who, why)
        check_registrable(name, self.metadata.get_artifact(artifact_id), self.artifacts)
        version = self.metadata.create_model_version(name, artifact_id, description=description)
        context = self.metadata.ensure_context(MODEL_CONTEXT_TYPE, name)
        self.metadata.attribute(context.id, [artifact_id])
        record = self.metadata.put_execution(
            REGISTRATION_TYPE,
            name=f"{name}/{version.version}",
            state=ExecutionState.COMPLETE,
            properties={
                "model": name,
                "version": version.version,
                "artifact_id": artifact_id,
                "who": who,
                "why": why,
            },
        )
        self.metadata.put_events([Event(artifact_id, record.id, EventType.INPUT, "model")])
        self.metadata.associate(context.id, [record.id])
        return version

    def resolve(self, ref: ModelRef | str) -> ResolvedModel:
        """What ``name@alias``, ``name/version`` or ``name`` (latest) points at now.

        ``name@latest`` means the latest version, as in MLflow. The returned artifact carries
        its state: a garbage-collected model resolves with ``state == DELETED``.

        Raises:
            InvalidInputError: the reference is malformed.
            NotFoundError: unknown model, version or alias; the message lists the known ones.
        """
        if isinstance(ref, str):
            ref = ModelRef.parse(ref)
        elif not isinstance(ref, ModelRef):
            raise InvalidInputError(
                f"Model reference {ref!r} is neither a ModelRef nor a string like 'taxi@champion'."
            )
        versions = self._versions(ref.name)
        if ref.alias is not None and ref.alias not in RESERVED_ALIASES:
            aliases = self._aliases(ref.name)
            if ref.alias not in aliases:
                raise NotFoundError(
                    f"Model {ref.name!r} has no alias {ref.alias!r}. Known aliases: "
                    f"{alias_listing(aliases)}. Set one with: loopline models alias set {ref.name} "
                    f"{ref.alias} VERSION"
                )
            number = aliases[ref.alias].version
        elif ref.version is not None:
            number = ref.version
        else:
            number = versions[-1].version
        chosen = pick_version(ref.name, versions, number)
        return ResolvedModel(
            name=ref.name,
            version=chosen.version,
            alias=ref.alias,
            artifact=self.metadata.get_artifact(chosen.artifact_id),
        )

    def list_models(self) -> list[ModelSummary]:
        """Every registered model, by name."""
        by_name: dict[str, list[ModelVersion]] = {}
        for version in self.metadata.list_model_versions():
            by_name.setdefault(version.name, []).append(version)
        aliases: dict[str, dict[str, int]] = {}
        for alias in self.metadata.list_model_aliases():
            aliases.setdefault(alias.name, {})[alias.alias] = alias.version
        return [
            ModelSummary(
                name=name,
                latest_version=max(v.version for v in versions),
                version_count=len(versions),
                aliases=aliases.get(name, {}),
            )
            for name, versions in sorted(by_name.items())
        ]

    def get_model(self, name: str) -> RegisteredModel:
        """One model with its versions (oldest first) and aliases. Raises NotFoundError."""
        versions = self._versions(name)
        aliases = {a: row.version for a, row in self._aliases(name).items()}
        return RegisteredModel(name=name, versions=tuple(versions), aliases=aliases)

    # ---- aliases ---------------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        who: str,
        why: str,
        evidence: Sequence[ArtifactId] = (),
        expect: int | None = None,
    ) -> AliasMove:
        """Point ``name@alias`` at ``version``, recording the move with its evidence.

        ``expect`` makes the move a compare-and-set: it happens only if the alias points at
        version ``expect`` now (``0``: it is not set), checked atomically with the write, so
        of two concurrent moves expecting the same version exactly one wins.

        Raises:
            InvalidInputError: bad alias (``latest`` is reserved), version, who, why or expect.
            NotFoundError: unknown model, version or evidence artifact.
            ConflictError: the alias is not at ``expect``; the message names where it is.
        """
        check_name("Alias", alias)
        if alias in RESERVED_ALIASES:
            raise InvalidInputError(
                f"Alias {alias!r} is reserved ({name}@{alias} always means the newest "
                "version); choose another alias name."
            )
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInputError(
                f"Model version {version!r} is not valid; versions are integers ≥ 1."
            )
        who, why = check_actor(who, why)
        check_alias_expect(name, alias, expect)
        with self._alias_lock:
            pick_version(name, self._versions(name), version)
            current = self._current(name, alias, expect)
            return self._move(
                name,
                alias,
                AliasAction.SET,
                from_version=current,
                to_version=version,
                who=who,
                why=why,
                evidence=evidence,
                expect=expect,
            )

    def unset_alias(
        self,
        name: str,
        alias: str,
        *,
        who: str,
        why: str,
        evidence: Sequence[ArtifactId] = (),
        expect: int | None = None,
    ) -> AliasMove:
        """Remove ``name@alias``, recording the move. Raises NotFoundError if it is not set,
        and ConflictError if ``expect`` is given and the alias is not at that version."""
        check_name("Alias", alias)
        who, why = check_actor(who, why)
        check_alias_expect(name, alias, expect)
        with self._alias_lock:
            self._versions(name)
            aliases = self._aliases(name)
            if expect or (expect == 0 and alias in aliases):
                self._current(name, alias, expect)  # ConflictError naming where it is
            if alias not in aliases:
                raise NotFoundError(
                    f"Model {name!r} has no alias {alias!r}, so there is nothing to unset. "
                    f"Known aliases: {alias_listing(aliases)}."
                )
            return self._move(
                name,
                alias,
                AliasAction.UNSET,
                from_version=aliases[alias].version,
                to_version=None,
                who=who,
                why=why,
                evidence=evidence,
                expect=aliases[alias].version if expect is None else expect,
            )

    def undo(
        self, name: str, alias: str, *, who: str, why: str, expect: int | None = None
    ) -> AliasMove:
        """Move ``name@alias`` back to where it was before its latest move (removing it if it
        did not exist then). The undo is itself a move, so undoing an undo redoes.

        Raises:
            NotFoundError: unknown model, or the alias was never moved.
            ConflictError: ``expect`` is given and the alias is not at that version.
        """
        check_name("Alias", alias)
        who, why = check_actor(who, why)
        check_alias_expect(name, alias, expect)
        with self._alias_lock:
            history = self.alias_history(name, alias)
            if not history:
                raise NotFoundError(
                    f"Alias {name}@{alias} has never been moved, so there is nothing to undo. "
                    f"Known aliases: {alias_listing(self._aliases(name))}."
                )
            last = history[0]
            current = self._current(name, alias, expect)
            return self._move(
                name,
                alias,
                AliasAction.UNDO,
                from_version=current,
                to_version=last.from_version,
                who=who,
                why=why,
                evidence=(),
                undoes=last.execution_id,
                expect=expect,
            )

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Recorded moves of one alias (or of every alias of the model), newest first.

        Failed moves are left out; a move whose final bookkeeping was cut short by a crash
        still counts if the alias row points at it.

        Raises:
            NotFoundError: the model is not registered.
        """
        self._versions(name)
        if alias is not None:
            check_name("Alias", alias)
        context = self.metadata.find_context(MODEL_CONTEXT_TYPE, name)
        if context is None:
            return []
        effective = {row.execution_id for row in self._aliases(name).values()}
        moves = [
            e
            for e in self.metadata.list_executions(
                type_name=ALIAS_MOVE_TYPE, context_id=context.id, newest_first=True
            )
            if (alias is None or e.properties.get("alias") == alias)
            and (e.state is ExecutionState.COMPLETE or e.id in effective)
        ]
        evidence: dict[int, list[tuple[int, ArtifactId]]] = {}
        for event in self.metadata.get_events(execution_ids=[e.id for e in moves]):
            if event.type is EventType.INPUT and event.port == "evidence":
                evidence.setdefault(event.execution_id, []).append((event.index, event.artifact_id))
        return [
            AliasMove.from_execution(e, tuple(a for _, a in sorted(evidence.get(e.id, []))))
            for e in moves
        ]

    # ---- internals -------------------------------------------------------------------------

    def _move(
        self,
        name: str,
        alias: str,
        action: AliasAction,
        *,
        from_version: int | None,
        to_version: int | None,
        who: str,
        why: str,
        evidence: Sequence[ArtifactId],
        undoes: int | None = None,
        expect: int | None = None,
    ) -> AliasMove:
        evidence_ids = check_evidence(self.metadata, evidence)
        subject = to_version if to_version is not None else from_version
        model_artifact = None
        if subject is not None:
            model_artifact = self.metadata.get_model_version(name, subject).artifact_id
        context = self.metadata.ensure_context(MODEL_CONTEXT_TYPE, name)
        properties: JsonDict = {
            "model": name,
            "alias": alias,
            "action": action.value,
            "from_version": from_version,
            "to_version": to_version,
            "who": who,
            "why": why,
        }
        if undoes is not None:
            properties["undoes"] = undoes
        execution = self.metadata.put_execution(
            ALIAS_MOVE_TYPE,
            name=f"{name}@{alias}",
            state=ExecutionState.RUNNING,
            properties=properties,
        )
        try:
            events = [
                Event(artifact, execution.id, EventType.INPUT, "evidence", index=i)
                for i, artifact in enumerate(evidence_ids)
            ]
            if model_artifact is not None:
                events.insert(0, Event(model_artifact, execution.id, EventType.INPUT, "model"))
            self.metadata.put_events(events)
            self.metadata.associate(context.id, [execution.id])
            self.metadata.set_model_alias(
                name, alias, to_version, execution_id=execution.id, expect=expect
            )
            done = self.metadata.update_execution(
                execution.id, state=ExecutionState.COMPLETE, ended_at=datetime.now(UTC)
            )
        except BaseException:
            with contextlib.suppress(LooplineError):
                self.metadata.update_execution(
                    execution.id, state=ExecutionState.FAILED, ended_at=datetime.now(UTC)
                )
            raise
        return AliasMove.from_execution(done, evidence_ids)

    def _versions(self, name: str) -> list[ModelVersion]:
        return registered_versions(self.metadata, name)

    def _aliases(self, name: str) -> dict[str, ModelAlias]:
        return {a.alias: a for a in self.metadata.list_model_aliases(name)}

    def _current(self, name: str, alias: str, expect: int | None) -> int | None:
        """The version ``name@alias`` points at now; ConflictError early (recording nothing)
        if it is not ``expect``. The binding check is the store's, in the move's write."""
        row = self._aliases(name).get(alias)
        current = None if row is None else row.version
        if expect is not None:
            check_alias_expected(name, alias, current, expect)
        return current
