"""`validation.publish_body` remembers keys it found valid: never an invalid one, and
never more than its bound."""

from __future__ import annotations

import pytest

from streamkit.server import validation


def _body(*keys: str) -> dict[str, object]:
    return {"messages": [{"key": k, "data": "d"} for k in keys]}


def test_a_remembered_key_is_still_checked_for_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "_VALID_KEYS", set())
    validation.publish_body(_body("orders.eu"))
    assert "orders.eu" in validation._VALID_KEYS and len(validation._VALID_KEYS) == 1
    with pytest.raises(validation.Invalid) as caught:
        validation.publish_body({"messages": [{"key": "orders.eu", "data": 7}]})
    assert caught.value.errors == {"messages[0].data": ["must be a string"]}


def test_an_invalid_key_is_never_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "_VALID_KEYS", set())
    for key in ("orders..eu", "a" * 300, "spaces are not", ""):
        with pytest.raises(validation.Invalid):
            validation.publish_body(_body(key))
    assert not validation._VALID_KEYS


def test_the_remembered_keys_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "_VALID_KEYS", set())
    monkeypatch.setattr(validation, "_MAX_VALID_KEYS", 100)
    for start in range(0, 1000, 250):
        validation.publish_body(_body(*(f"k.{i}" for i in range(start, start + 250))))
        assert len(validation._VALID_KEYS) <= 100
    assert "k.999" in validation._VALID_KEYS
