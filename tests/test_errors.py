"""How an error message quotes a value a user sent: short values as ``repr``, long ones cut
to their first 60 characters with their length said."""

from __future__ import annotations

from loopline.errors import clip, shown, shown_field


def test_a_short_value_is_quoted_as_its_repr() -> None:
    assert shown("taxi") == "'taxi'"
    assert shown(3.5) == "3.5"
    assert shown(None) == "None"
    assert shown(["a", 1]) == "['a', 1]"


def test_a_long_string_is_cut_to_60_characters_and_its_length_is_said() -> None:
    text = shown("x" * (1 << 20))
    assert text == f"{'x' * 60!r}…(1048576 characters)"
    assert len(shown("é" * 61)) < 100


def test_a_long_list_or_mapping_is_cut_by_its_repr() -> None:
    text = shown({"key": "y" * 10_000})
    assert text.startswith("{'key': 'yyyy") and text.endswith("…(10011 characters)")
    assert len(text) == 60 + len("…(10011 characters)")
    assert shown(list(range(10_000)), 200).startswith("[0, 1, 2")


def test_a_field_path_built_from_a_users_key_is_clipped_at_200_characters() -> None:
    assert shown_field("spec.run.params.tick") == "spec.run.params.tick"
    long = "spec.run.params." + "k" * 5000
    assert shown_field(long) == long[:200] + f"…({len(long)} characters)"
    assert clip("abc", 2) == "ab…(3 characters)"
