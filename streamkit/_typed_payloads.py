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
from collections.abc import Callable
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
    return isinstance(model, type) and _decoder(model) is not None


Decoder = Callable[[str, Callable[[], Any]], Any]
"""Builds an instance from (JSON text, a thunk giving the text decoded)."""


def decode(model: type[T], text: str, parsed: Callable[[], Any]) -> T:
    """``model`` built from the JSON ``text`` (``parsed()`` gives it decoded); `Misfit`
    when it does not fit, `TypeError` when ``model`` is not a model class."""
    decoder = _decoder(model) if isinstance(model, type) else None
    if decoder is None:
        raise TypeError(
            "a payload model must be a pydantic model, msgspec Struct, dataclass or attrs "
            f"class, not {model!r}"
        )
    return decoder(text, parsed)  # type: ignore[no-any-return]


def _decoder(model: type) -> Decoder | None:
    try:
        return _cached_decoder(model)
    except TypeError:  # an unhashable class: not one of ours to build
        return None


@functools.lru_cache(maxsize=256)
def _cached_decoder(model: type) -> Decoder | None:
    """How to build ``model``, found once per class."""
    validate_json = getattr(model, "model_validate_json", None)
    if validate_json is not None:
        return lambda text, parsed: _pydantic(validate_json, text)
    msgspec = _msgspec()
    if msgspec is not None and issubclass(model, msgspec.Struct):
        json_decoder = msgspec.json.Decoder(model)
        error = msgspec.DecodeError  # a ValidationError is one

        def from_msgspec(text: str, parsed: Callable[[], Any]) -> Any:
            try:
                return json_decoder.decode(text)
            except error as exc:
                raise _msgspec_misfit(exc) from exc

        return from_msgspec
    if dataclasses.is_dataclass(model) or hasattr(model, "__attrs_attrs__"):
        convert = _converter(model)

        def from_fields(text: str, parsed: Callable[[], Any]) -> Any:
            try:
                value = parsed()
            except Exception as exc:  # whatever the JSON decoder raises
                raise Misfit(None, f"not JSON: {exc}") from exc
            return convert(value)

        return from_fields
    return None


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
        path = f"{path}.{missing}" if path else missing
    return Misfit(path or None, reason)


# Dataclasses and attrs classes: one converter per annotation, made once.

Converter = Callable[[Any], Any]
"""Checks and converts one JSON value; raises `Misfit` with the field path below it."""

_MISSING = object()
_NONE = type(None)


@dataclasses.dataclass(frozen=True)
class _Field:
    key: str
    """Its name in the JSON object."""
    argument: str
    """Its keyword in ``__init__``."""
    type: Any
    required: bool


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


def _below(exc: Misfit, part: str | int) -> Misfit:
    return Misfit(f"{part}.{exc.field}" if exc.field else str(part), exc.reason)


def _converter(annotation: Any) -> Converter:
    try:
        return _cached_converter(annotation)
    except TypeError:  # unhashable (say, Annotated with a list): made each time
        return _make_converter(annotation)


@functools.lru_cache(maxsize=1024)
def _cached_converter(annotation: Any) -> Converter:
    return _make_converter(annotation)


def _identity(value: Any) -> Any:
    return value


def _make_converter(annotation: Any) -> Converter:
    origin = typing.get_origin(annotation)
    if annotation is Any or isinstance(annotation, TypeVar):
        return _identity
    if origin is typing.Union or origin is types.UnionType:
        return _union(typing.get_args(annotation))
    if origin is list or annotation is list:
        (item_type,) = typing.get_args(annotation) or (Any,)
        return _list(_converter(item_type))
    if origin is dict or annotation is dict:
        args = typing.get_args(annotation)
        return _dict(_converter(args[1] if len(args) == 2 else Any))
    if annotation is _NONE or annotation is None:
        return _checked(lambda v: v is None, "null", _identity)
    if annotation is bool:
        return _checked(lambda v: isinstance(v, bool), "a boolean", _identity)
    if annotation is int:
        return _checked(
            lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", _identity
        )
    if annotation is float:
        return _checked(
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number", float
        )
    if annotation is str:
        return _checked(lambda v: isinstance(v, str), "a string", _identity)
    if annotation is datetime:
        return _timestamp
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or hasattr(annotation, "__attrs_attrs__")
    ):
        return _instance(annotation)
    return _identity  # not checked: passed through as JSON gives it


def _checked(test: Callable[[Any], bool], expected: str, cast: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if not test(value):
            raise Misfit(None, f"expected {expected}, got {_kind(value)}")
        return cast(value)

    return convert


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise Misfit(None, f"expected an ISO 8601 timestamp, got {_kind(value)}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Misfit(None, f"not an ISO 8601 timestamp: {value!r}") from exc


def _union(options: tuple[Any, ...]) -> Converter:
    nullable = _NONE in options
    converters = [_converter(o) for o in options if o is not _NONE]

    def convert(value: Any) -> Any:
        if value is None and nullable:
            return None
        problems = []
        for one in converters:
            try:
                return one(value)
            except Misfit as exc:
                problems.append(exc)
        if len(problems) == 1:
            raise problems[0]
        raise Misfit(None, f"fits none of the types allowed, got {_kind(value)}")

    return convert


def _list(item: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, list):
            raise Misfit(None, f"expected a list, got {_kind(value)}")
        if item is _identity:
            return value
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except Misfit as exc:
                raise _below(exc, i) from exc
        return out

    return convert


def _dict(item: Converter) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Misfit(None, f"expected an object, got {_kind(value)}")
        if item is _identity:
            return value
        out = {}
        for key, element in value.items():
            try:
                out[key] = item(element)
            except Misfit as exc:
                raise _below(exc, key) from exc
        return out

    return convert


def _instance(model: type) -> Converter:
    # The fields' converters are made on first use: a class may refer to itself.
    plan: list[tuple[str, str, Converter, bool]] = []
    planned = False

    def convert(value: Any) -> Any:
        nonlocal planned
        if not planned:
            plan.extend((f.key, f.argument, _converter(f.type), f.required) for f in _fields(model))
            planned = True
        if not isinstance(value, dict):
            raise Misfit(None, f"expected an object for {model.__name__}, got {_kind(value)}")
        arguments = {}
        for key, argument, field_converter, required in plan:
            item = value.get(key, _MISSING)
            if item is _MISSING:
                if required:
                    raise Misfit(key, "field required")
                continue
            try:
                arguments[argument] = field_converter(item)
            except Misfit as exc:
                raise _below(exc, key) from exc
        try:
            return model(**arguments)
        except (TypeError, ValueError) as exc:  # a validator of the class refused it
            raise Misfit(None, str(exc)) from exc

    return convert


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), f"a {type(value).__name__}"
    )
