"""Read the Bicep files under infra/ through pycep-parser, and render its syntax tree back to short Bicep text."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"


def bicep_files() -> list[Path]:
    """Return every Bicep file under infra/, sorted."""
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(relative_path: str) -> dict[str, Any]:
    """Parse one Bicep file, named relative to infra/, into pycep's JSON form."""
    return BicepParser().parse(file_path=INFRA / relative_path)


def body(declaration: dict[str, Any]) -> dict[str, Any]:
    """Return the properties of a resource or module declaration, looking through loops and conditions."""
    config = declaration["config"]
    while "config" in config and ("loop_type" in config or "condition" in config):
        config = config["config"]
    return config


def loop_array(declaration: dict[str, Any]) -> str | None:
    """Return the name of the array a resource or module loops over, or None when it does not loop."""
    loop = declaration["config"].get("loop_type")
    return loop["detail"]["array_name"] if loop else None


def render(node: Any) -> str:
    """Render an expression from pycep's tree as compact Bicep-like text, for example 'vault.id' or 'guid(a, b)'.

    Literal strings and identifiers both come out bare, because pycep does not tell them apart.
    """
    if isinstance(node, dict) and "operator" in node:
        operator = node["operator"]
        operands = [render(value) for value in operator["operands"].values()]
        if operator["type"] == "property_accessor":
            return ".".join(operands)
        if operator["type"] == "nested_resource_accessor":
            return "::".join(operands)
        return f"{operator['type']}({', '.join(operands)})"
    if isinstance(node, dict) and "function" in node:
        function = node["function"]
        arguments = [render(value) for value in function.get("parameters", {}).values() if value is not None]
        return f"{function['type']}({', '.join(arguments)})"
    if isinstance(node, dict):
        return "{" + ", ".join(f"{key}: {render(value)}" for key, value in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(render(value) for value in node) + "]"
    return str(node)


def resources_of_type(resource_type: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Return (file, symbolic name, declaration) for every resource of that type in infra/, existing ones excluded."""
    found = []
    for path in bicep_files():
        relative = path.relative_to(INFRA).as_posix()
        for name, declaration in parse(relative).get("resources", {}).items():
            if declaration["type"] == resource_type and not declaration["existing"]:
                found.append((relative, name, declaration))
    return found
