"""Answers carry the JSON the database wrote as it came (schema/fast/json_fragments.py): the
same JSON value as encoding its parsed form, every fragment in its own place, and nothing
a user writes taken for one."""

from __future__ import annotations

import json

import pytest

from schema.fast.json_fragments import Fragment, encode


def test_an_answer_without_fragments_is_encoded_as_strawberry_encodes_it() -> None:
    # given an answer with text that needs escaping
    data = {"data": {"me": {"name": 'Zoë "Q" \\ \n', "n": [1, None, True]}}}
    # when it is encoded
    # then the bytes are compact json.dumps's
    assert encode(data) == json.dumps(data, separators=(",", ":"))


def test_each_fragment_takes_its_own_place() -> None:
    # given a dozen fragments (indices past 9 too) among ordinary values
    pages = [{"edges": [{"node": {"id": f"id{n}", "title": "Ünïcode «»"}}]} for n in range(12)]
    data = {
        "data": {
            f"p{n}": Fragment(json.dumps(page, ensure_ascii=False)) for n, page in enumerate(pages)
        },
        "errors": [{"message": "x", "path": ["p1"]}],
    }
    # when it is encoded
    encoded = encode(data)
    # then it reads as the same value with every page parsed in place
    assert json.loads(encoded) == {
        "data": {f"p{n}": page for n, page in enumerate(pages)},
        "errors": [{"message": "x", "path": ["p1"]}],
    }
    assert "Ünïcode «»" in encoded  # the database's text, unescaped


def test_text_that_looks_like_a_placeholder_stays_text() -> None:
    # given user text shaped like what stands for a fragment, beside a real fragment
    data = {"a": "keybin-fragment-0", "b": Fragment("[1,2]"), "c": "keybin-fragment-"}
    # when it is encoded
    # then only the fragment was replaced
    assert json.loads(encode(data)) == {
        "a": "keybin-fragment-0",
        "b": [1, 2],
        "c": "keybin-fragment-",
    }


def test_anything_else_json_cannot_encode_is_still_refused() -> None:
    # given a value that is neither JSON nor a fragment
    # when it is encoded
    # then it fails as json.dumps fails
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode({"a": object()})
