"""The shapes an AWS definition arrives in, brought to one: the CLI form ``{objects, parameters, values}``.

AWS writes a definition in two forms:

* the CLI form (``put-pipeline-definition --pipeline-definition file://...``): objects whose fields are keys,
  ``{"ref": "id"}`` references, ``parameters`` with their keys and a ``values`` object;
* the API form (``get-pipeline-definition`` output, the SDKs, CloudFormation): ``pipelineObjects`` (or
  ``objects``) whose ``fields`` are ``{key, stringValue | refValue}`` lists, ``parameterObjects`` with
  ``attributes`` and ``parameterValues`` as ``{id, stringValue}`` lists.

A key written more than once becomes a list, as AWS reads it. Pure: JSON in, JSON out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class FormError(ValueError):
    """The definition is in neither form; the message says where."""


def normalise(definition: Any) -> dict[str, Any]:
    """The definition in CLI form (a copy); a CLI-form definition is returned as it is."""
    if not isinstance(definition, Mapping):
        raise FormError('not an AWS Data Pipeline definition: expected a JSON object with an "objects" list')
    raw_objects = definition.get("pipelineObjects", definition.get("objects"))
    result: dict[str, Any] = {k: v for k, v in definition.items()
                              if k not in ("pipelineObjects", "parameterObjects", "parameterValues")}
    if isinstance(raw_objects, list):
        result["objects"] = [_object(o, i) if _is_api_object(o) else o for i, o in enumerate(raw_objects)]
    if "parameterObjects" in definition:
        result["parameters"] = [*_list(result.get("parameters")), *parameter_objects(definition["parameterObjects"])]
    if "parameterValues" in definition:
        result["values"] = {**_mapping(result.get("values")), **parameter_values(definition["parameterValues"])}
    return result


def parameter_objects(raw: Any) -> list[Any]:
    """``parameterObjects`` (API form: id and attributes) as CLI parameters; CLI-form items are kept."""
    if not isinstance(raw, list):
        raise FormError('"parameterObjects" must be a JSON list of {"id": ..., "attributes": [...]}')
    out: list[Any] = []
    for index, item in enumerate(raw):
        if not (isinstance(item, Mapping) and isinstance(item.get("attributes"), list)):
            out.append(item)
            continue
        param: dict[str, Any] = {"id": item.get("id")}
        for attribute in item["attributes"]:
            if not (isinstance(attribute, Mapping) and isinstance(attribute.get("key"), str)):
                raise FormError(f'parameterObjects[{index}] ("{item.get("id")}"): every attribute needs a "key" '
                                'and a "stringValue"')
            _add(param, attribute["key"], attribute.get("stringValue", ""))
        out.append(param)
    return out


def parameter_values(raw: Any) -> dict[str, Any]:
    """``parameterValues`` (``[{id, stringValue}]``) or a CLI ``values`` object, as ``{id: value}``."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, list):
        raise FormError('"parameterValues" must be a JSON list of {"id": ..., "stringValue": ...}')
    values: dict[str, Any] = {}
    for index, item in enumerate(raw):
        if not (isinstance(item, Mapping) and isinstance(item.get("id"), str) and "stringValue" in item):
            raise FormError(f'parameterValues[{index}]: write each value as {{"id": "myName", "stringValue": '
                            '"value"}')
        _add(values, item["id"], item["stringValue"])
    return values


def _is_api_object(obj: Any) -> bool:
    return isinstance(obj, Mapping) and isinstance(obj.get("fields"), list)


def _object(obj: Mapping[str, Any], index: int) -> dict[str, Any]:
    result: dict[str, Any] = {k: v for k, v in obj.items() if k != "fields"}
    for field in obj["fields"]:
        if not (isinstance(field, Mapping) and isinstance(field.get("key"), str)):
            raise FormError(f'objects[{index}] ("{obj.get("id")}"): every entry of "fields" needs a "key"')
        if "refValue" in field:
            value: Any = {"ref": field["refValue"]}
        elif "stringValue" in field:
            value = field["stringValue"]
        else:
            raise FormError(f'objects[{index}] ("{obj.get("id")}"): field "{field["key"]}" has neither '
                            '"stringValue" nor "refValue"')
        _add(result, field["key"], value)
    return result


def _add(target: dict[str, Any], key: str, value: Any) -> None:
    """A key given twice holds a list (AWS's multi-valued fields: step, precondition, ...)."""
    if key not in target:
        target[key] = value
    elif isinstance(target[key], list):
        target[key].append(value)
    else:
        target[key] = [target[key], value]


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}
