"""The JSON Schema subset the OpenAPI document uses: a validator and a hypothesis generator.

Supported keywords: ``$ref`` (to ``#/components/...``), ``type`` (one or a list),
``const``, ``enum``, ``anyOf``, ``oneOf``, ``allOf``, ``if``/``then``/``else``,
``properties``, ``required``, ``additionalProperties``, ``items``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``pattern`` (always
anchored here, matched as a full match, ECMA-style: no newline before ``$``),
``minimum``/``maximum``. Anything else (``format``, ``description``,
``default``) is ignored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

Schema = Mapping[str, Any]

GEN_MAX_ITEMS = 4
"""Longest array the generator builds (the schema's own maxItems may be far larger)."""
GEN_MAX_TEXT = 40


class Spec:
    """An OpenAPI document: resolves refs, validates values, generates valid ones."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.doc = doc
        self._strategies: dict[int, tuple[Schema, st.SearchStrategy[Any]]] = {}

    def deref(self, schema: Schema) -> Schema:
        for _ in range(20):
            ref = schema.get("$ref")
            if ref is None:
                return schema
            node: Any = self.doc
            for part in ref.removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        raise ValueError("reference loop")

    # -- validation -------------------------------------------------------------

    def errors(self, schema: Schema, value: Any, at: str = "$") -> list[str]:
        """Why ``value`` does not match ``schema`` (empty when it does)."""
        schema = self.deref(schema)
        out: list[str] = []
        if "anyOf" in schema and not any(not self.errors(s, value, at) for s in schema["anyOf"]):
            out.append(f"{at}: matches none of anyOf")
        if "oneOf" in schema:
            hits = sum(1 for s in schema["oneOf"] if not self.errors(s, value, at))
            if hits != 1:
                out.append(f"{at}: matches {hits} of oneOf")
        for sub in schema.get("allOf", ()):
            out += self.errors(sub, value, at)
        if "if" in schema:
            branch = schema.get("else" if self.errors(schema["if"], value, at) else "then")
            if branch:
                out += self.errors(branch, value, at)
        if "const" in schema and not _same(value, schema["const"]):
            out.append(f"{at}: {value!r} is not {schema['const']!r}")
        if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
            out.append(f"{at}: {value!r} not in {schema['enum']!r}")
        types = schema.get("type")
        if types is not None:
            names = [types] if isinstance(types, str) else list(types)
            if not any(_is_type(value, t) for t in names):
                out.append(f"{at}: {type(value).__name__} is not {types}")
                return out
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                out.append(f"{at}: shorter than {schema['minLength']}")
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                out.append(f"{at}: longer than {schema['maxLength']}")
            if "pattern" in schema and not _regex(schema["pattern"]).fullmatch(value):
                out.append(f"{at}: {value[:50]!r} does not match {schema['pattern']}")
        if _is_type(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(f"{at}: {value} < {schema['minimum']}")
            if "maximum" in schema and value > schema["maximum"]:
                out.append(f"{at}: {value} > {schema['maximum']}")
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for key in schema.get("required", ()):
                if key not in value:
                    out.append(f"{at}: {key} is required")
            extra = schema.get("additionalProperties", True)
            for key, item in value.items():
                if key in props:
                    out += self.errors(props[key], item, f"{at}.{key}")
                elif extra is False:
                    out.append(f"{at}: unexpected {key}")
                elif isinstance(extra, Mapping):
                    out += self.errors(extra, item, f"{at}.{key}")
        if isinstance(value, list):
            if len(value) < schema.get("minItems", 0):
                out.append(f"{at}: fewer than {schema['minItems']} items")
            if "maxItems" in schema and len(value) > schema["maxItems"]:
                out.append(f"{at}: more than {schema['maxItems']} items")
            if "items" in schema:
                for i, item in enumerate(value):
                    out += self.errors(schema["items"], item, f"{at}[{i}]")
        return out

    # -- generation ---------------------------------------------------------------

    def valid(self, schema: Schema) -> st.SearchStrategy[Any]:
        """Values that match ``schema`` (strategies are built once per schema object)."""
        cached = self._strategies.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        target = self.deref(schema)
        strategy = self._valid(target)
        if "if" in target:
            strategy = strategy.flatmap(lambda value: self._conditional(target, value))
        self._strategies[id(schema)] = (schema, strategy)  # the schema is kept alive with it
        return strategy

    def _valid(self, schema: Schema) -> st.SearchStrategy[Any]:
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return st.one_of([self.valid(s) for s in schema[key]])
        types = schema.get("type")
        if isinstance(types, list):
            return st.one_of([self._valid({**schema, "type": t}) for t in types])
        if types == "null":
            return st.none()
        if types == "boolean":
            return st.booleans()
        if types == "integer":
            return st.integers(schema.get("minimum"), schema.get("maximum"))
        if types == "string":
            return self._string(schema)
        if types == "array":
            top = min(schema.get("maxItems", GEN_MAX_ITEMS), GEN_MAX_ITEMS)
            items = self.valid(schema.get("items", {}))
            return st.lists(items, min_size=schema.get("minItems", 0), max_size=top)
        if types == "object" or "properties" in schema:
            props = schema.get("properties", {})
            required = set(schema.get("required", ()))
            return st.fixed_dictionaries(
                {k: self.valid(props.get(k, {})) for k in required},
                optional={k: self.valid(s) for k, s in props.items() if k not in required},
            )
        return st.none()  # an empty schema: anything goes, None will do

    def _string(self, schema: Schema) -> st.SearchStrategy[str]:
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        if "pattern" in schema:
            text = st.from_regex(_regex(schema["pattern"]), fullmatch=True)
            return text.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))
        return st.text(min_size=low, max_size=min(high or GEN_MAX_TEXT, GEN_MAX_TEXT))

    def _conditional(self, schema: Schema, value: Any) -> st.SearchStrategy[Any]:
        matched = not self.errors(schema["if"], value)
        branch = schema.get("then" if matched else "else")
        if not branch or not isinstance(value, dict):
            return st.just(value)
        props = schema.get("properties", {})
        fixes: dict[str, st.SearchStrategy[Any]] = {}
        for key, sub in branch.get("properties", {}).items():
            if key in value:
                fixes[key] = self.valid(sub)
        for key in branch.get("required", ()):
            if key not in value and key not in fixes:
                fixes[key] = self.valid(props.get(key, {}))
        return st.fixed_dictionaries(fixes).map(lambda extra: {**value, **extra})


@functools.lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    """An anchored pattern as a Python full-match regex (so ``$`` can't match before a newline)."""
    return re.compile(pattern.removeprefix("^").removesuffix("$"))


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return type(value) is int
    if name == "number":
        return type(value) in (int, float)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    raise ValueError(f"unknown type {name}")


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)
