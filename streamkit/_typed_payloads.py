"""Typed payloads: pydantic models, msgspec Structs, dataclasses and attrs instances.

`to_jsonable` is orjson's ``default=`` hook: it turns such an object (at the top
of a payload or nested in one) into JSON-able values. `decode` builds a model
instance from a payload's JSON text. None of those libraries is imported here:
an object of a library never imported cannot exist, so a pydantic model is
known by its ``model_dump`` / ``model_validate_json``, a msgspec Struct by
``msgspec.Struct`` once msgspec is in ``sys.modules``, an attrs class by its
``__attrs_attrs__`` and a dataclass by its ``__dataclass_fields__``.

Dataclasses and attrs classes are checked field by field for the types JSON
carries (``str``, ``int``, ``float``, ``bool``, ``None``, lists, dicts, unions,
`datetime` and nested dataclasses / attrs classes); other annotations are
passed through unchecked. pydantic and msgspec validate with their own rules.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

__all__ = ["Misfit", "decode", "is_model", "to_jsonable"]

T = TypeVar("T")


class Misfit(ValueError):
    """A payload does not fit a model: ``field`` (dotted path, or None) and why."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def _msgspec() -> Any:
    return sys.modules.get("msgspec")


def to_jsonable(value: Any) -> Any:
    """orjson's ``default=``: a typed object as JSON-able values; `TypeError` for the rest."""
    dump = getattr(value, "model_dump", None)
    if dump is not None and hasattr(type(value), "model_fields"):  # pydantic v2
        return dump(mode="json", by_alias=True)
    msgspec = _msgspec()
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    fields = getattr(type(value), "__attrs_attrs__", None)
    if fields is not None:
        # Nested typed values come back to this hook.
        return {f.name: getattr(value, f.name) for f in fields}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def is_model(model: object) -> bool:
    """True for a class `decode` can build: pydantic, msgspec, dataclass or attrs."""
    if not isinstance(model, type):
        return False
    if hasattr(model, "model_validate_json"):
        return True
    msgspec = _msgspec()
    if msgspec is not None and issubclass(model, msgspec.Struct):
        return True
    return dataclasses.is_dataclass(model) or hasattr(model, "__attrs_attrs__")


def decode(model: type[T], text: str, parsed: Callable[[], Any]) -> T:
    """``model`` built from the JSON ``text`` (``parsed()`` gives it decoded); `Misfit`
    when it does not fit, `TypeError` when ``model`` is not a model class."""
    if not is_model(model):
        raise TypeError(
            "a payload model must be a pydantic model, msgspec Struct, dataclass or attrs "
            f"class, not {model!r}"
        )
    validate_json = getattr(model, "model_validate_json", None)
    if validate_json is not None:
        return _pydantic(validate_json, text)  # type: ignore[no-any-return]
    msgspec = _msgspec()
    if msgspec is not None and issubclass(model, msgspec.Struct):
        try:
            return msgspec.json.decode(text, type=model)  # type: ignore[no-any-return]
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise _msgspec_misfit(exc) from exc
    try:
        value = parsed()
    except Exception as exc:  # whatever the JSON decoder raises
        raise Misfit(None, f"not JSON: {exc}") from exc
    return _build(model, value, "")


def _pydantic(validate_json: Callable[[str], Any], text: str) -> Any:
    try:
        return validate_json(text)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        first = errors()[0] if callable(errors) and errors() else None
        if first is None:
            raise Misfit(None, str(exc)) from exc
        field = ".".join(str(part) for part in first.get("loc", ())) or None
        raise Misfit(field, str(first.get("msg", exc))) from exc


def _msgspec_misfit(exc: Exception) -> Misfit:
    # msgspec says "Expected `int`, got `str` - at `$.items[0].qty`", or
    # "Object missing required field `qty` - at `$.items[0]`".
    message = str(exc)
    reason, _, where = message.partition(" - at `")
    path = where.rstrip("`").removeprefix("$").lstrip(".").replace("[", ".").replace("]", "")
    missing = reason.partition("missing required field `")[2].rstrip("`")
    if missing:
        path = _join(path, missing)
    return Misfit(path or None, reason)


# Dataclasses and attrs classes.

_MISSING = object()


@dataclasses.dataclass(frozen=True)
class _Field:
    key: str
    """Its name in the JSON object."""
    argument: str
    """Its keyword in ``__init__``."""
    type: Any
    required: bool


@functools.lru_cache(maxsize=256)
def _fields(model: type) -> tuple[_Field, ...]:
    try:
        hints = typing.get_type_hints(model)
    except Exception:  # an annotation that does not resolve is simply not checked
        hints = {}
    if dataclasses.is_dataclass(model):
        return tuple(
            _Field(
                f.name,
                f.name,
                hints.get(f.name, Any),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(model)
            if f.init
        )
    nothing = getattr(sys.modules.get("attr"), "NOTHING", _MISSING)
    return tuple(
        _Field(
            a.name,
            getattr(a, "alias", None) or a.name.lstrip("_"),
            hints.get(a.name, Any),
            a.default is nothing,
        )
        for a in model.__attrs_attrs__  # type: ignore[attr-defined]
        if a.init
    )


def _join(path: str, part: str | int) -> str:
    return f"{path}.{part}" if path else str(part)


def _build(model: type[T], value: Any, path: str) -> T:
    if not isinstance(value, Mapping):
        raise Misfit(path or None, f"expected an object for {model.__name__}, got {_kind(value)}")
    arguments: dict[str, Any] = {}
    for f in _fields(typing.cast(type, model)):
        item = value.get(f.key, _MISSING)
        if item is _MISSING:
            if f.required:
                raise Misfit(_join(path, f.key), "field required")
            continue
        arguments[f.argument] = _convert(f.type, item, _join(path, f.key))
    try:
        return model(**arguments)
    except (TypeError, ValueError) as exc:  # a validator of the class refused it
        raise Misfit(path or None, str(exc)) from exc


_NONE = type(None)


def _convert(annotation: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(annotation)
    if annotation is Any or isinstance(annotation, TypeVar):
        return value
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(annotation)
        if value is None and _NONE in options:
            return None
        problems = []
        for option in options:
            if option is _NONE:
                continue
            try:
                return _convert(option, value, path)
            except Misfit as exc:
                problems.append(exc)
        raise problems[0] if len(problems) == 1 else Misfit(path, f"fits none of {annotation}")
    if origin is list or annotation is list:
        if not isinstance(value, list):
            raise Misfit(path, f"expected a list, got {_kind(value)}")
        (item_type,) = typing.get_args(annotation) or (Any,)
        return [_convert(item_type, item, _join(path, i)) for i, item in enumerate(value)]
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise Misfit(path, f"expected an object, got {_kind(value)}")
        args = typing.get_args(annotation)
        item_type = args[1] if len(args) == 2 else Any
        return {k: _convert(item_type, v, _join(path, k)) for k, v in value.items()}
    if annotation is _NONE or annotation is None:
        if value is not None:
            raise Misfit(path, f"expected null, got {_kind(value)}")
        return None
    if annotation is bool:
        if not isinstance(value, bool):
            raise Misfit(path, f"expected a boolean, got {_kind(value)}")
        return value
    if annotation is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Misfit(path, f"expected an integer, got {_kind(value)}")
        return value
    if annotation is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise Misfit(path, f"expected a number, got {_kind(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise Misfit(path, f"expected a string, got {_kind(value)}")
        return value
    if annotation is datetime:
        if not isinstance(value, str):
            raise Misfit(path, f"expected an ISO 8601 timestamp, got {_kind(value)}")
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise Misfit(path, f"not an ISO 8601 timestamp: {value!r}") from exc
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or hasattr(annotation, "__attrs_attrs__")
    ):
        return _build(annotation, value, path)
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )
