"""``describe_validation_error``: pydantic errors worded like the reference server's serde
errors (first error only, a path only for nested fields, no Python reprs)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import ValidationError

from appserver.protocol.base import WireModel, describe_validation_error


class Inner(WireModel):
    count: int


class Params(WireModel):
    name: str
    flag: bool = False
    mode: Literal["fast", "slow"] = "fast"
    inner: Inner | None = None
    tags: list[str] = []
    ratio: float = 1.0


def message(raw: Any) -> str:
    with pytest.raises(ValidationError) as info:
        Params.model_validate(raw)
    return describe_validation_error(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, "missing field `name`"),
        ({"name": "n", "inner": {}}, "missing field `count` at `inner`"),
        (
            {"name": "n", "inner": {"count": "1"}},
            'invalid type: string "1", expected an integer at `inner.count`',
        ),
        ({"name": "n", "inner": 5}, "invalid type: integer `5`, expected a map"),
        ({"name": "n", "tags": "a"}, 'invalid type: string "a", expected a sequence'),
        ({"name": "n", "tags": [1]}, "invalid type: integer `1`, expected a string at `tags.0`"),
        ({"name": "n", "ratio": "x"}, 'invalid type: string "x", expected a number'),
    ],
)
def test_serde_style_messages(raw: Any, expected: str) -> None:
    assert message(raw) == expected


# The reference words a top-level type error without any path (transcript-errors.jsonl:
# ``thread/start{cwd:123}`` → "invalid type: integer `123`, expected a string").
TOP_LEVEL: list[tuple[Any, str]] = [
    ({"name": 123}, "invalid type: integer `123`, expected a string"),
    ({"name": None}, "invalid type: null, expected a string"),
    ({"name": True}, "invalid type: boolean `true`, expected a string"),
    ({"name": [1]}, "invalid type: sequence, expected a string"),
    ({"name": {"a": 1}}, "invalid type: map, expected a string"),
    ({"name": "n", "flag": "yes"}, 'invalid type: string "yes", expected a boolean'),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    TOP_LEVEL,
)
def test_top_level_type_errors_have_no_path(raw: Any, expected: str) -> None:
    assert message(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    TOP_LEVEL,
)
def test_top_level_type_errors_are_worded_like_serde(raw: Any, expected: str) -> None:
    assert message(raw).startswith(expected)


def test_unknown_variant_names_the_value() -> None:
    text = message({"name": "n", "mode": "medium"})
    assert text.startswith('unknown variant string "medium", ')
    assert "at `" not in text  # a top-level field: no path, as serde


def test_long_strings_are_shortened() -> None:
    text = message({"name": "n" * 500, "flag": "y" * 500})
    assert len(text) < 150
    assert text.startswith('invalid type: string "yyy')


def test_only_the_first_error_is_described() -> None:
    assert message({"flag": 1}) in {
        "missing field `name`",
        "invalid type: integer `1`, expected a boolean",
    }
