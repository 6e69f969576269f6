"""Which model: named models, numbered versions and movable aliases, with lineage.

Key contracts:
- ``ModelRegistry.register`` accepts only LIVE ``Model`` artifacts with a digest and
  published bytes; versions are numbered 1, 2, … atomically by the metadata store.
- ``resolve`` understands ``name@alias``, ``name/version`` and ``name`` (latest); its errors
  list the known versions or aliases and the command that fixes them.
- Every alias move (set, unset, undo) is an ``AliasMove`` execution with INPUT events from
  the model (port ``model``) and the evidence (port ``evidence``), associated to the model's
  context (type ``model``); ``alias_history`` reads them back, newest first.
- ``undo`` moves an alias back to where it was before its latest move and is itself a move.
- ``record_image`` records a container image (by digest) that serves a version, as an
  ``ImageBuild`` execution reading the model; ``model_images`` reads them back.

Imports ``metadata``, ``artifacts``, ``errors`` and ``types`` only.
"""

from loopline.registry.entities import (
    ALIAS_MOVE_TYPE,
    MODEL_CONTEXT_TYPE,
    REGISTRATION_TYPE,
    AliasAction,
    AliasMove,
    ModelSummary,
    RegisteredModel,
    ResolvedModel,
)
from loopline.registry.images import (
    IMAGE_ARTIFACT_TYPE,
    IMAGE_BUILD_TYPE,
    ModelImage,
    model_images,
    record_image,
)
from loopline.registry.registry import ModelRegistry

__all__ = [
    "ALIAS_MOVE_TYPE",
    "IMAGE_ARTIFACT_TYPE",
    "IMAGE_BUILD_TYPE",
    "MODEL_CONTEXT_TYPE",
    "REGISTRATION_TYPE",
    "AliasAction",
    "AliasMove",
    "ModelImage",
    "ModelRegistry",
    "ModelSummary",
    "RegisteredModel",
    "ResolvedModel",
    "model_images",
    "record_image",
]
