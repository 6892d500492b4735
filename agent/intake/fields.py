"""Strict readers for engine-supplied dicts (vmParams and its device entries).

VDSM engines send numbers and booleans both as JSON values and as strings ("1024", "true"),
so readers accept both spellings and nothing else. Every failure names the field by its path
(`devices[2].path`): a missing field raises `MissingParameter` (code 11), a bad value
`InvalidParams` (-32602). Every string read here (and every key and value of a string map)
passes `agent.wirevalues.check`; values are quoted in messages only through `wirevalues.echo`.
Pure: no I/O, no asyncio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent import wirevalues
from agent.errors import InvalidParams, MissingParameter
from agent.wirevalues import parse_bool, parse_uuid

_MISSING = object()


class Fields:
    """A read view over one engine dict; `path` prefixes field names in errors."""

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise InvalidParams(f"{path or 'params'} must be an object", param=path or "params")
        self._data = data
        self._path = path

    def name(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def has(self, key: str) -> bool:
        return self._data.get(key) not in (None, "")

    def _get(self, key: str, required: bool) -> Any:
        value = self._data.get(key, _MISSING)
        if value is _MISSING or value is None or value == "":
            if required:
                raise MissingParameter(f"{self.name(key)} is required", param=self.name(key))
            return _MISSING
        return value

    def obj(self, key: str) -> Fields:
        """The nested object at `key` (an empty one when absent), e.g. `specParams`."""
        raw = self._data.get(key)
        return Fields({} if raw is None else raw, self.name(key))

    def raw(self, key: str) -> Any:
        """The untyped value (None when absent); callers check it themselves."""
        return self._data.get(key)

    def field_names(self) -> list[str]:
        return [str(k) for k in self._data]

    def missing(self, key: str) -> MissingParameter:
        return MissingParameter(f"{self.name(key)} is required", param=self.name(key))

    def bad(self, key: str, reason: str) -> InvalidParams:
        return InvalidParams(f"{self.name(key)}: {reason}", param=self.name(key))

    def str_(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self._data.get(key)  # _get, inlined: this runs ~100 times per VM.create
        if value is None or value == "":
            if required:
                raise self.missing(key)
            return default
        if not isinstance(value, str):
            raise self.bad(key, f"expected a string, got {_json_type(value)}")
        if wirevalues.is_clean(value):  # the common case, without building the name
            return value
        return wirevalues.check(value, self.name(key))

    def int_(
        self,
        key: str,
        default: int | None = None,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> Any:
        value = self._get(key, required)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.bad(key, f"expected an integer, got {_json_type(value)}")
        try:
            number = int(value)
        except ValueError:
            raise self.bad(key, f"expected an integer, got {wirevalues.echo(value)}") from None
        if minimum is not None and number < minimum:
            raise self.bad(key, f"must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise self.bad(key, f"must be at most {maximum}, got {number}")
        return number

    def bool_(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is _MISSING:
            return default
        return parse_bool(value, self.name(key))

    def choice(
        self,
        key: str,
        choices: Sequence[str],
        default: str | None = None,
        *,
        required: bool = False,
    ) -> Any:
        value = self.str_(key, default, required=required)
        if value is not None and value not in choices:
            raise self.bad(
                key, f"must be one of {', '.join(choices)}, got {wirevalues.echo(value)}"
            )
        return value

    def uuid_(self, key: str, *, required: bool = True) -> Any:
        value = self.str_(key, required=required)
        if value is None:
            return None
        return parse_uuid(value, self.name(key))

    def str_map(self, key: str) -> dict[str, str]:
        value = self._get(key, False)
        if value is _MISSING:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.bad(key, "expected an object of strings")
        name = self.name(key)
        return {
            wirevalues.check(k, name, limit=256): wirevalues.check(v, f"{name}.{k}")
            for k, v in value.items()
        }

    def list_(self, key: str) -> list[Any]:
        value = self._get(key, False)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            raise self.bad(key, f"expected a list, got {_json_type(value)}")
        return value


def _json_type(value: Any) -> str:
    return {
        bool: "boolean",
        int: "number",
        float: "number",
        str: "string",
        list: "list",
        dict: "object",
    }.get(type(value), type(value).__name__)
