"""``apply -f`` reads its file into documents, and refuses what it cannot read by naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopline.cli.deploy import read_documents
from loopline.errors import InvalidDefinitionError


def test_a_yaml_file_nested_too_deeply_is_refused_naming_the_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 100_000)  # PyYAML recursed past the interpreter's limit
    with pytest.raises(InvalidDefinitionError, match="deep.yaml is nested too deeply"):
        read_documents(str(deep))


def test_documents_are_read_in_order_and_empty_ones_skipped(tmp_path: Path) -> None:
    docs = tmp_path / "docs.yaml"
    docs.write_text("kind: A\n---\n---\nkind: B\n")
    assert [d["kind"] for d in read_documents(str(docs))] == ["A", "B"]
