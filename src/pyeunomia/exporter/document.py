"""A config document as a tree of values that know where they came from.

YAML is built in one pass over the parser's event stream (libyaml's, when
PyYAML has it), so every mapping, sequence and scalar keeps the line it
starts on; JSON is parsed once, strictly, by the json module, and its values
have key paths but no lines. Errors name the file, the line when known and
the key path ("programs[0].metrics.counters[1].name").

Every input is bounded before the costly work, and the work is linear:
  - JSON: the values are counted first, at C speed, as 1 + the number of
    ',', '[' and '{' (an upper bound: strings can only add to it), so
    json.loads never builds more than MAX_NODES values;
  - YAML: values are counted as the events arrive, aliases and merges
    counted again for every place they are copied to, and the build stops
    at MAX_NODES; nesting stops at MAX_DEPTH;
  - key paths are worked out from a node's parent when an error needs one:
    stored in every node they made memory grow with depth times key length.
Before this, a 4 MiB API body of empty lists took 54 s and 1.09 GiB (82 s and
1.34 GiB as numbers), and a 15 MiB JSON config 288 s and 3.9 GiB: JSON was
composed as YAML too, by PyYAML's pure-Python parser, to find its lines, and
values were counted only after all of it was built. Now both are refused in
0.01-0.06 s; the costliest documents within the bounds build in under 1 s.

Pure: reads text, never touches the kernel.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import ConfigError

# A config has about 20 values per program, a few hundred with explicit bucket
# bounds or a static_map decoder; 200,000 is far above that, and that many
# values build in 0.3-0.9 s and 20-40 MiB (YAML flow lists the slowest).
MAX_NODES = 200_000
MAX_DEPTH = 64  # nesting; a config needs about 8
# No setting takes a number wider than a 128-bit global; Python refuses to
# read more than 4300 digits (a ValueError), and YAML's base-60 integers
# ("1:0:0:...") cost quadratic time in their length.
MAX_INT_BITS = 128
MAX_INT_TEXT = 200

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


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Node:
    """One value of the document: a dict of Nodes, a list of Nodes, or a scalar."""

    __slots__ = ("file", "key", "key_line", "line", "parent", "value")

    def __init__(self, value: Any, file: str, line: int | None, parent: Node | None = None,
                 key: str | int = "", key_line: int | None = None):
        self.value = value
        self.file = file
        self.line = line
        self.parent = parent  # None: the document itself
        self.key = key  # its key (or index) in the parent
        self.key_line = key_line  # for a mapping's value: the line of its key

    @property
    def path(self) -> str:
        keys = []
        node = self
        while node.parent is not None:
            keys.append(node.key)
            node = node.parent
        path = ""
        for key in reversed(keys):
            path = _child_path(path, key)
        return path

    def error(self, message: str, key: str | None = None) -> ConfigError:
        return config_error(message, file=self.file, line=self.line, key=key if key is not None else self.path)

    def child_path(self, key: str | int) -> str:
        return _child_path(self.path, key)

    @property
    def plain(self) -> Any:
        """The value with every Node unwrapped."""
        if isinstance(self.value, dict):
            return {k: v.plain for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain for v in self.value]
        return self.value

    def __repr__(self) -> str:
        return f"Node({self.value!r}, {self.file!r}, {self.line!r}, path={self.path!r})"


def parse_text(text: str, file: str, as_json: bool) -> Node:
    """The document in `text`, read as JSON when `as_json`, else as YAML."""
    if as_json:
        return _parse_json(text, file)
    return _parse_yaml(text, file)


def _too_many(file: str, line: int | None = None, how: str = "") -> ConfigError:
    return config_error(f"more than {MAX_NODES} values{how}: simplify the config", file=file, line=line)


def _too_deep(file: str, line: int | None) -> ConfigError:
    return config_error(f"nested more than {MAX_DEPTH} levels deep: simplify the config", file=file, line=line)


def _int_error(digits: int) -> str:
    return f"a whole number of {digits} characters: no setting takes one wider than {MAX_INT_BITS} bits"


# -- JSON ---------------------------------------------------------------------------------------

class _Refused:
    """What json.loads gives for a number it must not build; an error at its key path later."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


def _json_int(text: str) -> int | _Refused:
    if len(text) > MAX_INT_TEXT:  # not converted: Python refuses over 4300 digits, and it is slow near that
        return _Refused(_int_error(len(text)))
    value = int(text)
    return _Refused(_int_error(len(text))) if value.bit_length() > MAX_INT_BITS else value


def _parse_json(text: str, file: str) -> Node:
    if 1 + text.count(",") + text.count("[") + text.count("{") > MAX_NODES:
        raise _too_many(file, how=" (counting each ',', '[' and '{')")
    try:
        value = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as e:
        raise config_error(f"invalid JSON: {e.msg} (column {e.colno}): fix the syntax", file=file,
                          line=e.lineno) from None
    except RecursionError:
        raise config_error("invalid JSON: nested too deeply", file=file) from None
    return _json_node(value, file, None, "", 0)


def _json_node(value: Any, file: str, parent: Node | None, key: str | int, depth: int) -> Node:
    node = Node(value, file, None, parent, key)
    if depth > MAX_DEPTH:
        raise _too_deep(file, None)
    if isinstance(value, dict):
        node.value = {str(k): _json_node(v, file, node, str(k), depth + 1) for k, v in value.items()}
    elif isinstance(value, list):
        node.value = [_json_node(v, file, node, i, depth + 1) for i, v in enumerate(value)]
    elif isinstance(value, _Refused):
        raise node.error(value.message)
    return node


# -- YAML ---------------------------------------------------------------------------------------

def _parse_yaml(text: str, file: str) -> Node:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        return _YamlBuilder(file, loader).document()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = e.problem or e.context or "invalid YAML"
        raise config_error(f"invalid YAML: {problem}: fix the syntax", file=file, line=line) from None
    except yaml.YAMLError as e:
        raise config_error(f"invalid YAML: {str(e).splitlines()[0]}: fix the syntax", file=file) from None
    finally:
        loader.dispose()


MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"
INT_TAG = "tag:yaml.org,2002:int"
STR_TAG = "tag:yaml.org,2002:str"


class _Collection:
    """A mapping or sequence whose events are still arriving."""

    __slots__ = ("anchor", "key", "node", "pairs")

    def __init__(self, node: Node, anchor: str | None):
        self.node = node
        self.anchor = anchor
        self.key: tuple[Any, int, bool] | None = None  # a mapping's key waiting for its value: (key, line, merge)
        self.pairs: list[tuple[Any, int, bool, Node]] = []


class _YamlBuilder:
    """Nodes straight from the parser's events, as PyYAML's composer and
    SafeConstructor would give them (merge keys included), without their
    intermediate node graph; each value is counted where it lands, so an
    alias counts its whole value again, as the old composer's expansion did."""

    def __init__(self, file: str, loader: Any):
        import yaml

        self.scalar_node = yaml.ScalarNode
        self.file = file
        self.loader = loader
        self.count = 0
        self.anchors: dict[str, Node | None] = {}  # None: its collection is still open

    def document(self) -> Node:
        import yaml

        get = self.loader.get_event
        get()  # StreamStart
        event = get()
        if isinstance(event, yaml.StreamEndEvent):
            return Node(None, self.file, 1)
        root = self._tree(get)  # DocumentStart came; the root's events follow
        get()  # DocumentEnd
        event = get()
        if not isinstance(event, yaml.StreamEndEvent):
            raise config_error("invalid YAML: a second document: keep one", file=self.file,
                               line=event.start_mark.line + 1)
        return root

    def _tree(self, get: Any) -> Node:
        import yaml

        end, alias, scalar, mapping = yaml.CollectionEndEvent, yaml.AliasEvent, yaml.ScalarEvent, yaml.MappingStartEvent
        stack: list[_Collection] = []
        while True:
            event = get()
            line = event.start_mark.line + 1
            if isinstance(event, end):
                done = stack.pop()
                if stack:
                    self._place(stack[-1], done.node)
                if isinstance(done.node.value, dict):
                    self._close_mapping(done)
                if done.anchor is not None:
                    self.anchors[done.anchor] = done.node
                if not stack:
                    return done.node
                continue
            parent = stack[-1] if stack else None
            if parent is not None and isinstance(parent.node.value, dict) and parent.key is None:
                parent.key = self._key(event, line, parent)
                continue
            if isinstance(event, alias):
                if event.anchor not in self.anchors:
                    raise config_error(f"undefined alias *{event.anchor}: define &{event.anchor} first", file=self.file,
                                       line=line, key=self._where(parent))
                source = self.anchors[event.anchor]
                if source is None:
                    raise config_error(f"alias *{event.anchor} inside its own anchor: a loop", file=self.file,
                                       line=line, key=self._where(parent))
                node = self._copy(source, len(stack))
            else:
                self._counted(line, len(stack))
                anchor = event.anchor
                if anchor is not None:
                    self._anchor(anchor, line)
                if isinstance(event, scalar):
                    node = Node(self._scalar(event, line), self.file, line)
                    if anchor is not None:
                        self.anchors[anchor] = node
                else:
                    value: dict[str, Node] | list[Node] = {} if isinstance(event, mapping) else []
                    node = Node(value, self.file, line)
                    if parent is not None:
                        self._attach(parent, node)  # now: errors inside it name its whole key path
                    stack.append(_Collection(node, anchor))
                    continue
            if parent is None:
                return node
            self._place(parent, node)

    def _counted(self, line: int, depth: int) -> None:
        self.count += 1
        if self.count > MAX_NODES:
            raise _too_many(self.file, line, " (aliases expanding?)")
        if depth > MAX_DEPTH:
            raise _too_deep(self.file, line)

    def _anchor(self, anchor: str, line: int) -> None:
        if anchor in self.anchors:
            raise config_error(f"anchor &{anchor} defined twice: rename one", file=self.file, line=line)
        self.anchors[anchor] = None

    def _where(self, parent: _Collection | None) -> str:
        return parent.node.path if parent is not None else ""

    def _attach(self, parent: _Collection, node: Node) -> None:
        """Make `node` the next value of `parent` (not yet in its list or pairs)."""
        if isinstance(parent.node.value, list):
            node.parent, node.key = parent.node, len(parent.node.value)
        else:
            assert parent.key is not None
            node.parent, node.key = parent.node, parent.key[0]

    def _place(self, parent: _Collection, node: Node) -> None:
        self._attach(parent, node)
        if isinstance(parent.node.value, list):
            parent.node.value.append(node)
            return
        assert parent.key is not None
        key, key_line, merge = parent.key
        parent.pairs.append((key, key_line, merge, node))
        parent.key = None

    def _key(self, event: Any, line: int, parent: _Collection) -> tuple[Any, int, bool]:
        """A mapping key: text (or a merge `<<`), from a scalar or an alias of one."""
        import yaml

        if isinstance(event, yaml.ScalarEvent):
            tag = self._tag(event)
            if tag == MERGE_TAG:
                return "<<", line, True
            key = event.value if tag == VALUE_TAG else self._scalar(event, line, tag)
            if event.anchor is not None:  # `&k name: 1` ... `*k : 2`
                self._anchor(event.anchor, line)
                self.anchors[event.anchor] = Node(key, self.file, line)
        elif (isinstance(event, yaml.AliasEvent) and (source := self.anchors.get(event.anchor or "")) is not None
              and not isinstance(source.value, dict | list)):
            key = source.value
        else:
            raise config_error("a key must be text, not a list or mapping", file=self.file, line=line)
        if not isinstance(key, str):
            raise config_error(f"a key must be text, got {shown(key)}", file=self.file, line=line,
                               key=parent.node.path)
        return key, line, False

    def _tag(self, event: Any) -> str:
        tag: str | None = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(self.scalar_node, event.value, event.implicit)
        assert tag is not None
        return tag

    def _scalar(self, event: Any, line: int, tag: str | None = None) -> Any:
        tag = tag or self._tag(event)
        if tag == STR_TAG:
            return event.value  # what SafeConstructor gives, without building a node for it
        import yaml

        if tag == INT_TAG and len(event.value) > MAX_INT_TEXT:
            raise config_error(f"invalid value: {_int_error(len(event.value))}", file=self.file, line=line)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as e:  # ValueError: a date such as 2024-13-45
            raise config_error(f"invalid value: {str(e).splitlines()[0]}", file=self.file, line=line) from None
        except (ArithmeticError, LookupError, AttributeError, TypeError):  # !!int '', !!bool maybe, !!timestamp x
            raise config_error(f"invalid value: {shown(event.value)} is no {tag.rsplit(':', 1)[-1]}", file=self.file,
                               line=line) from None
        finally:
            self.loader.constructed_objects.clear()  # one scalar at a time: nothing to share
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise config_error(f"invalid value: {_int_error(len(event.value))}", file=self.file, line=line)
        return value

    def _copy(self, source: Node, depth: int) -> Node:
        """A fresh copy of an anchored value where an alias names it, counted."""
        self._counted(source.line or 0, depth)
        node = Node(source.value, source.file, source.line, key_line=source.key_line)
        if isinstance(source.value, dict):
            node.value = {}
            for key, child in source.value.items():
                copied = self._copy(child, depth + 1)
                copied.parent, copied.key = node, key
                node.value[key] = copied
        elif isinstance(source.value, list):
            node.value = []
            for i, child in enumerate(source.value):
                copied = self._copy(child, depth + 1)
                copied.parent, copied.key = node, i
                node.value.append(copied)
        return node

    def _close_mapping(self, done: _Collection) -> None:
        """Merges (`<<: *defaults`, `<<: [*a, *b]`) first, as PyYAML's
        flatten_mapping orders them, then the mapping's own keys; a key given
        twice, by a merge or not, is an error."""
        mapping = done.node
        entries: list[tuple[Any, int | None, Node]] = []
        for _key, _line, merge, value in done.pairs:
            if not merge:
                continue
            sources = value.value if isinstance(value.value, list) else [value]
            for source in sources:
                if not isinstance(source.value, dict):
                    raise source.error("invalid YAML merge: expected a mapping or list of mappings to merge")
            for source in reversed(sources):
                entries += [(k, child.key_line, child) for k, child in source.value.items()]
        entries += [(key, line, value) for key, line, merge, value in done.pairs if not merge]
        out: dict[str, Node] = {}
        for key, key_line, child in entries:
            if key in out:
                raise config_error("key given twice: keep one", file=self.file, line=key_line,
                                   key=mapping.child_path(key))
            child.parent, child.key, child.key_line = mapping, key, key_line
            out[key] = child
        mapping.value = out
