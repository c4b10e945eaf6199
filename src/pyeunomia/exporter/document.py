"""A config document as a tree of values that know where they came from.

YAML is composed (not loaded) so every mapping, sequence and scalar keeps the
line it starts on; JSON is parsed strictly by the json module, and its lines
come from composing the same text as YAML (JSON is YAML's flow style) when that
gives the same values. Errors name the file, the line and the key path
("programs[0].metrics.counters[1].name").

Pure: reads text, never touches the kernel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

MAX_NODES = 200_000  # aliases can make a small YAML file expand without bound
MAX_DEPTH = 64  # nesting; a config needs about 8


MAX_SHOWN = 60  # characters of a value or key quoted in an error
MAX_KEY_PATH = 160
MAX_ERROR = 800


def shown(value: Any) -> str:
    """`value` as an error quotes it: its repr, shortened when long."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 4] + "...'"


def config_error(message: str, *, file: str, line: int | None = None, key: str = "") -> ConfigError:
    """A ConfigError that stays one readable line, whatever the document holds."""
    key, message = _printable(key), _printable(message)
    if len(key) > MAX_KEY_PATH:
        key = "..." + key[-(MAX_KEY_PATH - 3):]
    if len(message) > MAX_ERROR:
        message = message[: MAX_ERROR - 3] + "..."
    return ConfigError(message, file=file, line=line, key=key)


def _printable(text: str) -> str:
    """Control characters (a newline in a key, say) escaped as Python writes them."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Node:
    """One value of the document: a dict of Nodes, a list of Nodes, or a scalar."""

    value: Any
    file: str
    line: int | None
    path: str
    key_line: int | None = None  # for a mapping's value: the line of its key

    def error(self, message: str, key: str | None = None) -> ConfigError:
        return config_error(message, file=self.file, line=self.line, key=key if key is not None else self.path)

    def child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    @property
    def plain(self) -> Any:
        """The value with every Node unwrapped."""
        if isinstance(self.value, dict):
            return {k: v.plain for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain for v in self.value]
        return self.value


def parse_text(text: str, file: str, as_json: bool) -> Node:
    """The document in `text`, read as JSON when `as_json`, else as YAML."""
    if as_json:
        return _parse_json(text, file)
    return _parse_yaml(text, file)


def _parse_json(text: str, file: str) -> Node:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise config_error(f"invalid JSON: {e.msg} (column {e.colno}): fix the syntax", file=file,
                          line=e.lineno) from None
    except RecursionError:
        raise config_error("invalid JSON: nested too deeply", file=file) from None
    try:
        located = _parse_yaml(text, file)
    except ConfigError:
        located = None
    if located is not None and located.plain == value:
        return located
    return _unlocated(value, file, "")


def _unlocated(value: Any, file: str, path: str, depth: int = 0) -> Node:
    node = Node(None, file, None, path)
    if depth > MAX_DEPTH:
        raise _too_deep(file, None)
    if isinstance(value, dict):
        return Node({str(k): _unlocated(v, file, node.child_path(str(k)), depth + 1) for k, v in value.items()},
                    file, None, path)
    if isinstance(value, list):
        return Node([_unlocated(v, file, node.child_path(i), depth + 1) for i, v in enumerate(value)], file, None,
                    path)
    return Node(value, file, None, path)


def _too_deep(file: str, line: int | None) -> ConfigError:
    return config_error(f"nested more than {MAX_DEPTH} levels deep: simplify the config", file=file, line=line)


def _parse_yaml(text: str, file: str) -> Node:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or e.context or "invalid YAML"
        raise config_error(f"invalid YAML: {problem}: fix the syntax", file=file, line=line) from None
    except yaml.YAMLError as e:
        raise config_error(f"invalid YAML: {str(e).splitlines()[0]}: fix the syntax", file=file) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise _too_deep(file, None) from None
    if root is None:
        return Node(None, file, 1, "")
    return _Composer(file).convert(root, "")


class _Composer:
    def __init__(self, file: str):
        import yaml.constructor

        self.file = file
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0

    def convert(self, node: Any, path: str, depth: int = 0) -> Node:
        import yaml

        self.count += 1
        if self.count > MAX_NODES:
            raise config_error(f"more than {MAX_NODES} values (aliases expanding?): simplify the config",
                              file=self.file)
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise _too_deep(self.file, line)
        here = Node(None, self.file, line, path)
        if isinstance(node, yaml.MappingNode):
            try:
                self.constructor.flatten_mapping(node)  # `<<: *anchor` merges
            except yaml.YAMLError as e:
                raise here.error(f"invalid YAML merge: {str(e).splitlines()[0]}") from None
            out: dict[str, Node] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if not isinstance(key, str):
                    raise config_error(f"a key must be text, got {shown(key)}", file=self.file,
                                      line=key_node.start_mark.line + 1, key=path)
                if key in out:
                    raise config_error("key given twice: keep one", file=self.file,
                                      line=key_node.start_mark.line + 1, key=here.child_path(key))
                value = self.convert(value_node, here.child_path(key), depth + 1)
                out[key] = Node(value.value, value.file, value.line, value.path, key_node.start_mark.line + 1)
            return Node(out, self.file, line, path)
        if isinstance(node, yaml.SequenceNode):
            return Node([self.convert(v, here.child_path(i), depth + 1) for i, v in enumerate(node.value)],
                        self.file, line, path)
        return Node(self._scalar(node), self.file, line, path)

    def _scalar(self, node: Any) -> Any:
        import yaml

        if not isinstance(node, yaml.ScalarNode):
            raise config_error("a key must be text, not a list or mapping", file=self.file,
                              line=node.start_mark.line + 1)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            raise config_error(f"invalid value: {str(e).splitlines()[0]}", file=self.file,
                              line=node.start_mark.line + 1) from None
