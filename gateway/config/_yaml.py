"""YAML for config files: PyYAML's safe loader, except that a key given twice in one mapping
is refused (PyYAML keeps the last one silently), naming the key's path and both lines."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gateway.errors import ConfigError


def _refuse_duplicates(node: Node, path: str, seen: set[int]) -> None:
    if id(node) in seen:  # an alias: its node was checked where it was defined
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicates(item, f"{path}[{index}]", seen)
    elif isinstance(node, MappingNode):
        lines: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else f"<{key.tag}>"
            where = f"{path}.{name}" if path else str(name)
            if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                first = lines.get((key.tag, key.value))
                if first is not None:
                    raise ConfigError(f"{where}: duplicate key (lines {first} and {line})")
                lines[key.tag, key.value] = line
            _refuse_duplicates(value, where, seen)


class ConfigLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that raises ConfigError on a duplicate mapping key."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _refuse_duplicates(node, "", set())
        return self.construct_document(node)


def load_yaml(text: str) -> Any:
    """Parse one YAML document; raises yaml.YAMLError, or ConfigError for a duplicate key."""
    return yaml.load(text, Loader=ConfigLoader)
