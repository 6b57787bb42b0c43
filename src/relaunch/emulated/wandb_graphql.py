"""Which GraphQL fields the wandb SDK selects, read from the installed SDK itself, so the W&B stand-in can refuse
any other.

W&B publishes no GraphQL schema. What the SDK sends is the best evidence of what W&B's API answers, so the test
stand-in accepts a field only if some query of the installed SDK selects it at the same path: the Python SDK's query
strings (`wandb/**/*.py`, f-string templates included) and those compiled into its `wandb-core` service binary
(every public-API call goes through it). Nothing here is kept by hand: a newer SDK brings its own list.

A field is a path from the operation type down (`query.project.runQueue.runQueueItem.state`); aliases count by
the field they alias, fragments by what they select (an interpolated `...{name}` spread counts as any fragment).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

Path_ = tuple[str, ...]

_DEFINITION = re.compile(
    r"\b(?:(?:query|mutation|subscription)\s+\w+\s*[({]|fragment\s+\w+\s+on\s+\w+\s*\{)|(?:^|\n)\s*(?:query|mutation)\s*\{"
)
_INTERPOLATION = re.compile(r"(?<!\{)\{\w+\}(?!\})")  # an f-string's {name}, not a doubled {{
_TOKEN = re.compile(r"\.\.\.|[{}:]|@\w+|[_A-Za-z]\w*")
_OPERATIONS = ("query", "mutation", "subscription")
_ALWAYS = "__typename"  # GraphQL's meta-field: valid on every type


class GraphQLSyntaxError(ValueError):
    """A document the field check cannot read."""


class WandbMissing(RuntimeError):
    """The wandb SDK is not installed: there is nothing to read the allowed fields from."""


@dataclass(frozen=True)
class Field:
    name: str
    children: tuple[Node, ...] | None = None


@dataclass(frozen=True)
class Spread:
    fragment: str | None  # None: an interpolated spread of the SDK's (`...{fragment_name}`)


@dataclass(frozen=True)
class Inline:
    children: tuple[Node, ...]


Node = Field | Spread | Inline


@dataclass
class Document:
    operations: list[tuple[str, tuple[Node, ...]]]
    fragments: dict[str, tuple[Node, ...]]


def parse(text: str) -> Document:
    """The operations and fragments of a GraphQL document (arguments, variables and directives left out)."""
    tokens = _TOKEN.findall(_strip_arguments(_strip_strings(text)))
    try:
        return _definitions(tokens)
    except IndexError:
        raise GraphQLSyntaxError("Expected Name, found <EOF>") from None


def _definitions(tokens: list[str]) -> Document:
    doc = Document([], {})
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        if token in _OPERATIONS or token == "{":
            kind = token if token != "{" else "query"
            while pos < len(tokens) and tokens[pos] != "{":
                pos += 1
            selection, pos = _selection(tokens, pos)
            doc.operations.append((kind, selection))
        elif token == "fragment" and pos + 4 < len(tokens) and tokens[pos + 2] == "on":
            name = tokens[pos + 1]
            doc.fragments[name], pos = _selection(tokens, pos + 4)
        else:
            raise GraphQLSyntaxError(f"unexpected {token!r} at the top of the document")
    return doc


def paths(doc: Document, extra_fragments: dict[str, tuple[Node, ...]] | None = None) -> set[Path_]:
    """Every field path the document's operations select (each path's prefixes included).

    With `extra_fragments` (the SDK's, read from many files) a spread of a fragment found nowhere selects nothing;
    without, it is an error, as on W&B's server.
    """
    fragments = {**(extra_fragments or {}), **doc.fragments}
    found: set[Path_] = set()
    for kind, selection in doc.operations:
        _walk(selection, (kind,), fragments, found, 0, strict=extra_fragments is None)
    return found


@functools.cache
def sdk_paths() -> frozenset[Path_]:
    """Every field path a query of the installed wandb SDK selects (WandbMissing without the SDK)."""
    root = _sdk_root()
    texts = [p.read_text(errors="replace") for p in root.rglob("*.py")]
    texts += [_binary_definitions(p.read_bytes()) for p in (root / "bin").glob("wandb-core*")]
    docs = [doc for text in texts for doc in _documents(text)]
    fragments = {name: sel for doc in docs for name, sel in doc.fragments.items()}
    return frozenset(path for doc in docs for path in paths(doc, fragments))


def refused(query: str, allowed: frozenset[Path_] | set[Path_]) -> list[Path_]:
    """The paths `query` selects that `allowed` does not hold (GraphQLSyntaxError if it cannot be read)."""
    doc = parse(query)
    if not doc.operations:
        raise GraphQLSyntaxError("the document holds no operation")
    return sorted(p for p in paths(doc) if p not in allowed and p[-1] != _ALWAYS)


def _sdk_root() -> Path:
    import importlib.util

    found = importlib.util.find_spec("wandb")
    if found is None or found.origin is None:
        raise WandbMissing(
            "the W&B stand-in reads the allowed GraphQL fields from the wandb SDK, which is not installed"
            " (pip install -e '.[wandb]')"
        )
    return Path(found.origin).parent


# -- reading -------------------------------------------------------------------------------------------------------


def _binary_definitions(data: bytes) -> str:
    """The stretches of a compiled binary where GraphQL definitions start (each one a line of its own in Go)."""
    windows = []
    for keyword in (b"\nquery ", b"\nmutation ", b"\nfragment "):
        pos = data.find(keyword)
        while pos != -1:
            windows.append(data[pos : pos + 20000].decode("latin-1"))
            pos = data.find(keyword, pos + 1)
    return "\n".join(windows)


def _documents(text: str) -> Iterator[Document]:
    """The GraphQL definitions found in a source or binary text, each read on its own."""
    for match in _DEFINITION.finditer(text):
        opening = _opening_brace(text, match.start())
        block = None if opening is None else _balanced(text, opening)
        if block is None:
            continue
        source = text[match.start() : block]
        if "{{" in source:  # an f-string template: its doubled braces are GraphQL's, {name} is Python's
            source = _INTERPOLATION.sub("", source).replace("{{", "{").replace("}}", "}")
        try:
            yield parse(source)
        except GraphQLSyntaxError:
            continue


def _opening_brace(text: str, start: int) -> int | None:
    """Where the definition's selection set opens: the first '{' outside its variables' parentheses."""
    depth = 0
    for pos in range(start, min(len(text), start + 5000)):
        if text[pos] == "(":
            depth += 1
        elif text[pos] == ")":
            depth -= 1
        elif text[pos] == "{" and depth == 0:
            return pos
    return None


def _balanced(text: str, start: int) -> int | None:
    depth = 0
    for pos in range(start, min(len(text), start + 20000)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return pos + 1
    return None


def _strip_strings(text: str) -> str:
    text = re.sub(r'"""[\s\S]*?"""', '""', text)
    text = re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)
    return re.sub(r"#[^\n]*", "", text)


def _strip_arguments(text: str) -> str:
    out, depth = [], 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(char)
    return "".join(out)


def _selection(tokens: list[str], pos: int) -> tuple[tuple[Node, ...], int]:
    """The selection set opening at tokens[pos] == '{', and the position after its '}'."""
    if pos >= len(tokens) or tokens[pos] != "{":
        raise GraphQLSyntaxError("expected a selection set")
    pos += 1
    nodes: list[Node] = []
    while tokens[pos] != "}":
        token = tokens[pos]
        if token == "...":
            nxt = tokens[pos + 1]
            if nxt == "on" or nxt == "{":
                children, pos = _selection(tokens, pos + (3 if nxt == "on" else 1))
                nodes.append(Inline(children))
            elif _is_name(nxt):
                nodes.append(Spread(nxt))
                pos += 2
            else:
                nodes.append(Spread(None))
                pos += 1
        elif _is_name(token):
            name, pos = token, pos + 1
            if tokens[pos] == ":":
                name, pos = tokens[pos + 1], pos + 2
            while tokens[pos].startswith("@"):
                pos += 1
            children = None
            if tokens[pos] == "{":
                children, pos = _selection(tokens, pos)
            nodes.append(Field(name, children))
        elif token.startswith("@"):
            pos += 1
        else:
            raise GraphQLSyntaxError(f"unexpected {token!r} in a selection set")
    return tuple(nodes), pos + 1


def _is_name(token: str) -> bool:
    return bool(token) and (token[0].isalpha() or token[0] == "_")


def _walk(
    nodes: tuple[Node, ...],
    prefix: Path_,
    fragments: dict[str, tuple[Node, ...]],
    out: set[Path_],
    depth: int,
    strict: bool,
) -> None:
    if depth > 12:  # fragments may spread each other; W&B's go no deeper
        return
    for node in nodes:
        if isinstance(node, Field):
            path = (*prefix, node.name)
            out.add(path)
            if node.children:
                _walk(node.children, path, fragments, out, depth + 1, strict)
        elif isinstance(node, Inline):
            _walk(node.children, prefix, fragments, out, depth + 1, strict)
        elif node.fragment is None:
            for selection in fragments.values():
                _walk(selection, prefix, fragments, out, depth + 1, strict)
        elif node.fragment in fragments:
            _walk(fragments[node.fragment], prefix, fragments, out, depth + 1, strict)
        elif strict:
            raise GraphQLSyntaxError(f'Unknown fragment "{node.fragment}".')
