#!/usr/bin/env python3
"""Type-check every Bicep ``resource`` under infra/ against Bicep's own type data.

No Bicep compiler can be installed offline here, so this script does the part of ``bicep build``
that catches most deploy errors: it holds each resource declaration against the resource types
Bicep itself ships (bicep-types v3, read from ``../shared/bicep-types/types.trimmed.json``
next to the repository, or from ``$BICEP_TYPES``; see SOURCES.md there for the format).

For every ``resource`` of every ``.bicep`` file under infra/ it checks that:

* its ``type@apiVersion`` is in the type data (a short child type such as
  ``'queues@…'`` inside a parent, or with ``parent:``, is resolved to the full type first);
* every property path the body sets exists (nested objects, arrays, ``for`` bodies, and
  discriminated objects, whose variant is chosen when the discriminator is a literal), is
  not read-only, and that required properties are present;
* a literal value (string, integer, bool) is allowed there: string literal unions, string
  length and pattern, integer range;
* a value that comes from a ``param`` is allowed by the param's decorators: each
  ``@allowed`` value must be accepted, and ``@minValue``/``@maxValue`` (and
  ``@minLength``/``@maxLength``) must lie inside the type's range. A module's param is
  followed to what every ``module`` statement passes to it, and a ``var`` to its value;
* the resource can be deployed at the file's ``targetScope``;
* the ARM deploy-time rules of ``DEPLOY_RULES`` hold: rules the type data does not carry
  (it describes each API version generically, not each hosting plan).

What it does not do: compile. Values known only at deploy time (function calls, resource
properties, loop variables, object params read member by member) are accepted when their kind
fits (a ``string(…)`` call where an int is expected is reported); ``output``, ``type`` and
``func`` statements are not checked; Bicep's own diagnostics (scoping, cycles,
deploy-time-constant rules, linter) still need ``az bicep build`` / ``azd provision --preview``.
The reader understands the Bicep the project writes (params with decorators, vars, resources
incl. ``existing`` and nested children, modules, ``if``/``for`` bodies, objects, arrays,
strings with ``${}``, ``'''`` strings, comments); anything else is reported as a problem
rather than skipped.

Output: one line per problem, ``file:line: resource symbol (type@api): path: problem``, then
``infra_types: N resources checked, M problems``. Exit status 0 when clean, 1 on any
problem, 2 when the type data is missing.
"""

from __future__ import annotations

import difflib
import json
import os
import posixpath
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
#: CI clones the repository as a sibling of shared/; $BICEP_TYPES overrides.
DEFAULT_TYPES = REPO.parent / "shared" / "bicep-types" / "types.trimmed.json"

# Property flags of bicep-types v3.
REQUIRED = 1
READ_ONLY = 2

#: Resource body keys that are Bicep language, not part of the resource type.
LANGUAGE_KEYS = frozenset({"parent", "scope", "dependsOn"})

#: Scope bits of ResourceType.writableScopes, by Bicep targetScope.
SCOPE_BITS = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8}

#: Value kinds of param types (a user-defined or union param type is not followed).
PARAM_KINDS = {name: name for name in ("string", "int", "bool", "object", "array")}

#: Bicep functions whose result kind is fixed, by kind (for calls used as values).
FUNCTIONS_BY_KIND = {
    "string": "string format toLower toUpper guid uniqueString substring replace join trim "
    "base64 uri resourceId subscriptionResourceId tenantResourceId extensionResourceId",
    "int": "int length",
    "bool": "bool empty contains startsWith endsWith",
    "array": "items split range createArray",
    "object": "createObject",
}
CALL_KINDS = {name: kind for kind, names in FUNCTIONS_BY_KIND.items() for name in names.split()}

#: Statements the checker has no use for: skipped whole.
SKIPPED_STATEMENTS = frozenset({"output", "metadata", "type", "func", "import", "extension"})


# --------------------------------------------------------------------------------------------
# ARM deploy-time rules that the type data does not express
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployRule:
    """An ARM rule for one property path of one resource type, seen at deploy time only.

    The type data describes an API version for every hosting plan at once, so a property
    that one plan rejects, or a narrower range one plan enforces, is invisible in it. A rule
    applies to a resource of ``resource_type`` whose literal body sets ``when_set``; it then
    either forbids ``path`` or narrows the integer range allowed there.
    """

    resource_type: str
    when_set: str
    path: str
    reason: str
    source: str
    forbidden: bool = False
    min_value: int | None = None
    max_value: int | None = None


DEPLOY_RULES = (
    DeployRule(
        resource_type="Microsoft.Web/sites",
        when_set="properties.functionAppConfig",
        path="properties.siteConfig.ftpsState",
        forbidden=True,
        reason=(
            "a Flex Consumption site (functionAppConfig) rejects siteConfig.ftpsState "
            "(ExtendedCode 51021); turn FTP off with the sites/basicPublishingCredentialsPolicies "
            "'ftp' resource instead"
        ),
        source="ARM deployment error reported in issue #9",
    ),
    DeployRule(
        resource_type="Microsoft.Web/sites",
        when_set="properties.functionAppConfig",
        path="properties.functionAppConfig.scaleAndConcurrency.maximumInstanceCount",
        min_value=40,
        max_value=1000,
        reason="Flex Consumption accepts a maximum instance count of 40 to 1000",
        source=(
            "Microsoft Learn, Azure Functions 'Event-driven scaling', Limit scale-out "
            "(Flex Consumption); ARM deployment error reported in issue #9"
        ),
    ),
)


# --------------------------------------------------------------------------------------------
# Bicep reader: tokens
# --------------------------------------------------------------------------------------------


class BicepSyntaxError(Exception):
    """Bicep text the reader does not understand, at a line."""

    def __init__(self, line: int, message: str) -> None:
        """Keep the line so that the problem can point at it."""
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Token:
    """One token: kind is name, int, string, op, newline or eof.

    A string's value is a tuple of parts: text, or the tokens of one ``${…}`` interpolation.
    """

    kind: str
    value: object
    line: int


#: Multi-character operators, longest first so that the lexer prefers them.
OPERATORS = ("...", "=>", "==", "!=", "=~", "!~", "<=", ">=", "&&", "||", "??", ".?", "::")
SINGLE_OPERATORS = frozenset("{}[]()<>,:.?!=@+-*/%|&~")
ESCAPES = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NUMBER = re.compile(r"[0-9]+")
UNICODE_ESCAPE = re.compile(r"\\u\{([0-9A-Fa-f]{1,6})\}")


class Lexer:
    """Splits Bicep text into tokens; newlines are tokens because they end statements."""

    def __init__(self, text: str) -> None:
        """Start at the top of ``text``."""
        self.text = text
        self.pos = 0
        self.line = 1

    def tokens(self) -> list[Token]:
        """Every token of the text, ending with one eof token."""
        out = []
        while (token := self.next_token()) is not None:
            out.append(token)
        out.append(Token("eof", None, self.line))
        return out

    def next_token(self) -> Token | None:
        """The next token, or None at the end of the text."""
        self.skip_blanks()
        if self.pos >= len(self.text):
            return None
        char = self.text[self.pos]
        if char == "\n":
            self.pos += 1
            self.line += 1
            return Token("newline", None, self.line - 1)
        if char == "'":
            return (
                self.multiline_string() if self.text.startswith("'''", self.pos) else self.string()
            )
        return self.word() or self.operator()

    def word(self) -> Token | None:
        """An integer or a name at the cursor, or None."""
        if match := NUMBER.match(self.text, self.pos):
            return self.advance(match, "int", int(match[0]))
        if match := NAME.match(self.text, self.pos):
            return self.advance(match, "name", match[0])
        return None

    def advance(self, match: re.Match[str], kind: str, value: object) -> Token:
        """A token for ``match``, moving past it."""
        self.pos = match.end()
        return Token(kind, value, self.line)

    def skip_blanks(self) -> None:
        """Skip spaces and comments (a comment's newline stays: it ends the statement)."""
        while self.pos < len(self.text):
            if self.text[self.pos] in " \t\r":
                self.pos += 1
            elif self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif self.text.startswith("/*", self.pos):
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    raise BicepSyntaxError(self.line, "unterminated /* comment")
                self.line += self.text.count("\n", self.pos, end)
                self.pos = end + 2
            else:
                return

    def operator(self) -> Token:
        """An operator or punctuation token."""
        for operator in OPERATORS:
            if self.text.startswith(operator, self.pos):
                self.pos += len(operator)
                return Token("op", operator, self.line)
        char = self.text[self.pos]
        if char not in SINGLE_OPERATORS:
            raise BicepSyntaxError(self.line, f"unexpected character {char!r}")
        self.pos += 1
        return Token("op", char, self.line)

    def string(self) -> Token:
        """A '…' string: escapes decoded, each ``${…}`` kept as its own tokens."""
        line = self.line
        self.pos += 1
        parts: list[str | tuple[Token, ...]] = []
        text: list[str] = []
        while True:
            if self.pos >= len(self.text) or self.text[self.pos] == "\n":
                raise BicepSyntaxError(line, "unterminated string (use ''' for multi-line text)")
            char = self.text[self.pos]
            if char == "'":
                self.pos += 1
                break
            if char == "\\":
                text.append(self.escape())
            elif self.text.startswith("${", self.pos):
                parts.append("".join(text))
                text = []
                self.pos += 2
                parts.append(self.interpolation())
            else:
                text.append(char)
                self.pos += 1
        parts.append("".join(text))
        return Token("string", tuple(part for part in parts if part != ""), line)

    def escape(self) -> str:
        """The character of the escape sequence at the cursor."""
        following = self.text[self.pos + 1 : self.pos + 2]
        if following in ESCAPES:
            self.pos += 2
            return ESCAPES[following]
        if match := UNICODE_ESCAPE.match(self.text, self.pos):
            self.pos = match.end()
            return chr(int(match[1], 16))
        raise BicepSyntaxError(self.line, f"unknown escape \\{following}")

    def interpolation(self) -> tuple[Token, ...]:
        """The tokens of one ``${…}`` up to its closing brace (nested braces and strings)."""
        line = self.line
        tokens: list[Token] = []
        depth = 0
        while True:
            token = self.next_token()
            if token is None:
                raise BicepSyntaxError(line, "unterminated ${…} in a string")
            if token.kind == "op" and token.value == "{":
                depth += 1
            elif token.kind == "op" and token.value == "}":
                if depth == 0:
                    break
                depth -= 1
            if token.kind != "newline":
                tokens.append(token)
        tokens.append(Token("eof", None, self.line))
        return tuple(tokens)

    def multiline_string(self) -> Token:
        """A '''…''' string: verbatim, no escapes or interpolation, first newline dropped."""
        line = self.line
        start = self.pos + 3
        end = self.text.find("'''", start)
        if end < 0:
            raise BicepSyntaxError(line, "unterminated ''' string")
        value = self.text[start:end]
        value = value.removeprefix("\r\n") if value.startswith("\r\n") else value
        value = value.removeprefix("\n")
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end + 3
        return Token("string", (value,), line)


# --------------------------------------------------------------------------------------------
# Bicep reader: syntax tree
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Node:
    """An expression, at the line where it starts."""

    line: int


@dataclass(eq=False)
class Lit(Node):
    """A literal string (without interpolation), integer, bool or null."""

    value: str | int | bool | None


@dataclass(eq=False)
class Ref(Node):
    """A bare name: param, var, resource, module, or a loop/lambda variable (bound)."""

    name: str
    bound: bool = False


@dataclass(eq=False)
class Call(Node):
    """A function call (namespace and receiver dropped: ``sys.x()`` is ``x``)."""

    name: str
    args: list[Node]


@dataclass(eq=False)
class Ternary(Node):
    """``c ? a : b`` or ``a ?? b``: the value is one of the branches."""

    branches: tuple[Node, ...]


@dataclass(eq=False)
class Expr(Node):
    """Any other expression; kind is its value kind when the operator fixes it."""

    kind: str | None


@dataclass(eq=False)
class Member:
    """One ``key: value`` of an object (key None: computed name; spread: ``...value``)."""

    key: str | None
    line: int
    value: Node
    spread: bool = False


@dataclass(eq=False)
class Obj(Node):
    """An object literal, with the child resources declared inside it."""

    members: list[Member]
    resources: list[Resource]


@dataclass(eq=False)
class Arr(Node):
    """An array literal."""

    items: list[Node]


@dataclass(eq=False)
class ForExpr(Node):
    """``[for … in …: body]``: an array of bodies."""

    body: Node


@dataclass(eq=False)
class IfExpr(Node):
    """``if (condition) body`` of a resource or module (or of a ``for`` body)."""

    body: Node


@dataclass(eq=False)
class Param:
    """A ``param`` with its decorators (name -> argument nodes)."""

    name: str
    line: int
    type_name: str | None
    default: Node | None
    decorators: dict[str, list[Node]]

    def allowed(self) -> list[object] | None:
        """The literal values of ``@allowed([...])``, or None."""
        args = self.decorators.get("allowed")
        if not args or not isinstance(args[0], Arr):
            return None
        items = args[0].items
        if not all(isinstance(item, Lit) for item in items):
            return None
        return [item.value for item in items if isinstance(item, Lit)]

    def bound(self, decorator: str) -> int | None:
        """The integer argument of ``@minValue``/``@maxValue``/``@minLength``/``@maxLength``."""
        args = self.decorators.get(decorator)
        if args and isinstance(args[0], Lit) and type(args[0].value) is int:
            return args[0].value
        return None


@dataclass(eq=False)
class Var:
    """A ``var`` and its value."""

    name: str
    line: int
    value: Node


@dataclass(eq=False)
class Resource:
    """A ``resource`` declaration; enclosing is the parent it is nested in, if any."""

    symbol: str
    line: int
    type_api: str
    existing: bool
    body: Node
    enclosing: Resource | None = None


@dataclass(eq=False)
class Module:
    """A ``module`` statement: a path and the body that passes its params."""

    symbol: str
    line: int
    path: str
    body: Node


@dataclass(eq=False)
class BicepFile:
    """What the checker needs from one .bicep file."""

    path: str
    target_scope: str = "resourceGroup"
    params: dict[str, Param] = field(default_factory=dict)
    vars: dict[str, Var] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    modules: list[Module] = field(default_factory=list)


def body_object(node: Node) -> Obj | None:
    """The object literal of a resource/module body, through ``if`` and ``for``."""
    while isinstance(node, IfExpr | ForExpr):
        node = node.body
    return node if isinstance(node, Obj) else None


def member(obj: Obj, key: str) -> Member | None:
    """The member ``key`` of an object literal, or None."""
    return next((item for item in obj.members if item.key == key), None)


def string_parts(token: Token) -> tuple[str | tuple[Token, ...], ...]:
    """The parts of a string token: text, and the tokens of each ``${…}``."""
    if not isinstance(token.value, tuple):
        raise BicepSyntaxError(token.line, "expected a string")
    return token.value


def plain_text(token: Token) -> str | None:
    """The text of a string token without interpolation (None when it has ``${…}``)."""
    parts = string_parts(token)
    if all(isinstance(part, str) for part in parts):
        return "".join(part for part in parts if isinstance(part, str))
    return None


def describe_token(token: Token) -> str:
    """A token as an error message shows it."""
    if token.kind in ("newline", "eof"):
        return "end of line" if token.kind == "newline" else "end of file"
    if token.kind == "string":
        return "a string"
    return repr(token.value)


# --------------------------------------------------------------------------------------------
# Bicep reader: parser
# --------------------------------------------------------------------------------------------

#: Binary operators by increasing precedence.
BINARY_LEVELS = (
    ("??",),
    ("||",),
    ("&&",),
    ("==", "!=", "=~", "!~"),
    ("<", "<=", ">", ">="),
    ("+", "-"),
    ("*", "/", "%"),
)
BOOL_OPERATORS = frozenset({"||", "&&", "==", "!=", "=~", "!~", "<", "<=", ">", ">="})


class Parser:
    """Recursive-descent reader for the Bicep the project writes."""

    def __init__(self, tokens: list[Token], path: str, bound: list[str] | None = None) -> None:
        """Read ``tokens`` of ``path``; ``bound``: loop variables in scope (interpolations)."""
        self.tokens = tokens
        self.index = 0
        self.path = path
        self.bound: list[str] = list(bound or [])

    # --- token helpers ---

    def peek(self, ahead: int = 0) -> Token:
        """The token ``ahead`` positions on (eof past the end)."""
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def at(self, kind: str, value: object = None, ahead: int = 0) -> bool:
        """Whether the token ``ahead`` is of ``kind`` (and ``value``, when given)."""
        token = self.peek(ahead)
        return token.kind == kind and (value is None or token.value == value)

    def take(self) -> Token:
        """The current token, moving past it."""
        token = self.peek()
        self.index += 1
        return token

    def expect(self, kind: str, value: object = None) -> Token:
        """The current token, which must be of ``kind`` (and ``value``)."""
        if not self.at(kind, value):
            wanted = repr(value) if value is not None else kind
            found = describe_token(self.peek())
            raise BicepSyntaxError(self.peek().line, f"expected {wanted}, found {found}")
        return self.take()

    def skip_newlines(self) -> None:
        """Move past newline tokens."""
        while self.at("newline"):
            self.take()

    def plain_string(self) -> str:
        """A string token without interpolation (resource types, module paths)."""
        token = self.expect("string")
        text = plain_text(token)
        if text is None:
            raise BicepSyntaxError(token.line, "expected a string without ${…}")
        return text

    # --- statements ---

    def parse_file(self) -> BicepFile:
        """Every statement of the file."""
        file = BicepFile(self.path)
        while True:
            self.skip_newlines()
            if self.at("eof"):
                return file
            decorators = self.decorators()
            self.statement(file, decorators)
            if not self.at("eof"):
                self.expect("newline")

    def statement(self, file: BicepFile, decorators: dict[str, list[Node]]) -> None:
        """One top-level statement, recorded in ``file``."""
        keyword = self.expect("name")
        if keyword.value == "param":
            param = self.param(decorators)
            file.params[param.name] = param
        elif keyword.value == "var":
            var = self.var()
            file.vars[var.name] = var
        elif keyword.value == "resource":
            self.adopt(file, self.resource(keyword.line))
        elif keyword.value == "module":
            file.modules.append(self.module(keyword.line))
        elif keyword.value == "targetScope":
            self.expect("op", "=")
            scope = self.expression()
            if isinstance(scope, Lit) and isinstance(scope.value, str):
                file.target_scope = scope.value
        elif keyword.value in SKIPPED_STATEMENTS:
            self.skip_statement()
        else:
            raise BicepSyntaxError(keyword.line, f"unsupported statement {keyword.value!r}")

    def adopt(self, file: BicepFile, resource: Resource) -> None:
        """Record a resource and, recursively, the child resources declared in its body."""
        file.resources.append(resource)
        body = body_object(resource.body)
        for child in body.resources if body else []:
            child.enclosing = resource
            self.adopt(file, child)

    def decorators(self) -> dict[str, list[Node]]:
        """``@name(args)`` lines before a declaration."""
        found: dict[str, list[Node]] = {}
        while self.at("op", "@"):
            line = self.take().line
            node = self.postfix()
            if not isinstance(node, Call):
                raise BicepSyntaxError(line, "a decorator must be a function call")
            found[node.name] = node.args
            self.skip_newlines()
        return found

    def param(self, decorators: dict[str, list[Node]]) -> Param:
        """``param name type [= default]``."""
        name = self.expect("name")
        type_name = self.type_name()
        default = None
        if self.at("op", "="):
            self.take()
            default = self.expression()
        return Param(str(name.value), name.line, type_name, default, decorators)

    def var(self) -> Var:
        """``var name [type] = value``."""
        name = self.expect("name")
        if not self.at("op", "="):
            self.type_name()
        self.expect("op", "=")
        return Var(str(name.value), name.line, self.expression())

    def type_name(self) -> str | None:
        """Skip a type expression; return it when it is one plain name (``string``, ``int``)."""
        start = self.index
        depth = 0
        while not self.at("eof") and (depth or not (self.at("newline") or self.at("op", "="))):
            token = self.take()
            if token.kind == "op" and token.value in ("(", "[", "{"):
                depth += 1
            elif token.kind == "op" and token.value in (")", "]", "}"):
                depth -= 1
        names = self.tokens[start : self.index]
        if len(names) == 1 and names[0].kind == "name":
            return str(names[0].value)
        return None

    def resource(self, line: int) -> Resource:
        """``resource symbol 'type@api' [existing] = body`` (after the keyword)."""
        symbol = self.expect("name")
        type_api = self.plain_string()
        existing = self.at("name", "existing")
        if existing:
            self.take()
        self.expect("op", "=")
        return Resource(str(symbol.value), line, type_api, existing, self.declaration_body())

    def module(self, line: int) -> Module:
        """``module symbol 'path' = body`` (after the keyword)."""
        symbol = self.expect("name")
        path = self.plain_string()
        self.expect("op", "=")
        return Module(str(symbol.value), line, path, self.declaration_body())

    def declaration_body(self) -> Node:
        """An object, ``if (c) {…}`` or ``[for …]`` after a resource or module's ``=``."""
        if self.at("name", "if"):
            return self.conditional()
        return self.expression()

    def conditional(self) -> IfExpr:
        """``if (condition) body``."""
        line = self.take().line
        self.parenthesised()
        return IfExpr(line, self.expression())

    def parenthesised(self) -> Node:
        """``( expression )``, newlines allowed inside."""
        self.expect("op", "(")
        self.skip_newlines()
        node = self.expression()
        self.skip_newlines()
        self.expect("op", ")")
        return node

    def skip_statement(self) -> None:
        """Move to the end of a statement the checker does not use."""
        depth = 0
        while not self.at("eof") and (depth or not self.at("newline")):
            token = self.take()
            if token.kind == "op" and token.value in ("(", "[", "{"):
                depth += 1
            elif token.kind == "op" and token.value in (")", "]", "}"):
                depth -= 1

    # --- expressions ---

    def expression(self) -> Node:
        """A full expression, ternary included."""
        first = self.binary(0)
        if not self.at("op", "?"):
            return first
        self.take()
        yes = self.expression()
        self.expect("op", ":")
        return Ternary(first.line, (yes, self.expression()))

    def binary(self, level: int) -> Node:
        """Binary operators from precedence ``level`` up."""
        if level == len(BINARY_LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().kind == "op" and self.peek().value in BINARY_LEVELS[level]:
            operator = str(self.take().value)
            right = self.binary(level + 1)
            if operator == "??":
                left = Ternary(left.line, (left, right))
            else:
                left = Expr(left.line, "bool" if operator in BOOL_OPERATORS else "int")
        return left

    def unary(self) -> Node:
        """``!x``, ``-x`` (a negative integer literal stays a literal)."""
        if self.at("op", "!"):
            line = self.take().line
            self.unary()
            return Expr(line, "bool")
        if self.at("op", "-"):
            line = self.take().line
            operand = self.unary()
            if isinstance(operand, Lit) and type(operand.value) is int:
                return Lit(line, -operand.value)
            return Expr(line, "int")
        return self.postfix()

    def postfix(self) -> Node:
        """Member access, indexing, calls and ``!`` after a primary expression."""
        node = self.primary()
        while True:
            if self.peek().kind == "op" and self.peek().value in (".", ".?", "::"):
                self.take()
                name = str(self.expect("name").value)
                if self.at("op", "("):
                    node = Call(node.line, name, self.arguments())  # az.x(), sys.x(), r.listKeys()
                else:
                    node = Expr(node.line, None)  # a property: known at deploy time only
            elif self.at("op", "["):
                self.take()
                if self.at("op", "?"):
                    self.take()
                self.skip_newlines()
                self.expression()
                self.skip_newlines()
                self.expect("op", "]")
                node = Expr(node.line, None)
            elif self.at("op", "(") and isinstance(node, Ref):
                node = Call(node.line, node.name, self.arguments())
            elif self.at("op", "!"):
                self.take()  # non-null assertion: the value is unchanged
            else:
                return node

    def arguments(self) -> list[Node]:
        """``( a, b, … )`` of a call, newlines allowed."""
        self.expect("op", "(")
        args: list[Node] = []
        self.skip_newlines()
        while not self.at("op", ")"):
            args.append(self.expression())
            self.skip_newlines()
            if not self.at("op", ")"):
                self.expect("op", ",")
                self.skip_newlines()
        self.take()
        return args

    def primary(self) -> Node:
        """A literal, name, parenthesised expression, lambda, object or array."""
        token = self.peek()
        if token.kind == "string":
            self.take()
            return self.string(token)
        if token.kind == "int":
            self.take()
            return Lit(token.line, token.value if isinstance(token.value, int) else 0)
        if token.kind == "name":
            return self.name()
        if self.at("op", "("):
            return self.group()
        if self.at("op", "{"):
            return self.object()
        if self.at("op", "["):
            return self.array()
        raise BicepSyntaxError(token.line, f"unexpected {describe_token(token)}")

    def string(self, token: Token) -> Node:
        """A plain string literal, or an interpolated string (its ``${…}`` read too)."""
        text = plain_text(token)
        if text is not None:
            return Lit(token.line, text)
        for part in string_parts(token):
            if isinstance(part, tuple):
                inner = Parser(list(part), self.path, self.bound)
                inner.expression()
                inner.expect("eof")
        return Expr(token.line, "string")

    def name(self) -> Node:
        """``true``/``false``/``null``, a lambda ``x => …``, or a reference."""
        token = self.take()
        name = str(token.value)
        if name in ("true", "false"):
            return Lit(token.line, name == "true")
        if name == "null":
            return Lit(token.line, None)
        if self.at("op", "=>"):
            return self.lambda_body(token.line, [name])
        return Ref(token.line, name, bound=name in self.bound)

    def lambda_body(self, line: int, names: list[str]) -> Node:
        """The body of a lambda (its parameters bound while it is read)."""
        self.expect("op", "=>")
        self.bound.extend(names)
        self.expression()
        del self.bound[len(self.bound) - len(names) :]
        return Expr(line, None)

    def group(self) -> Node:
        """``( expression )`` or the parameter list of a lambda."""
        line = self.take().line
        items: list[Node] = []
        self.skip_newlines()
        while not self.at("op", ")"):
            items.append(self.expression())
            self.skip_newlines()
            if not self.at("op", ")"):
                self.expect("op", ",")
                self.skip_newlines()
        self.take()
        if self.at("op", "=>"):
            return self.lambda_body(line, [item.name for item in items if isinstance(item, Ref)])
        if len(items) != 1:
            raise BicepSyntaxError(line, "expected one expression in parentheses")
        return items[0]

    def separator(self, closing: str) -> None:
        """A comma or newline between object members or array items."""
        if self.at("op", ","):
            self.take()
            self.skip_newlines()
        elif self.at("newline"):
            self.skip_newlines()
        elif not self.at("op", closing):
            found = describe_token(self.peek())
            raise BicepSyntaxError(
                self.peek().line, f"expected a new line, ',' or {closing!r}, found {found}"
            )

    def object(self) -> Obj:
        """``{ key: value … }``, with nested child resources."""
        line = self.take().line
        obj = Obj(line, [], [])
        self.skip_newlines()
        while not self.at("op", "}"):
            if self.at("op", "@") or (self.at("name", "resource") and self.at("name", ahead=1)):
                self.decorators()
                keyword = self.expect("name", "resource")
                obj.resources.append(self.resource(keyword.line))
            elif self.at("op", "..."):
                spread = self.take()
                obj.members.append(Member(None, spread.line, self.expression(), spread=True))
            else:
                obj.members.append(self.member())
            self.separator("}")
        self.take()
        return obj

    def member(self) -> Member:
        """``key: value`` (a key with ``${}`` has no name the checker can know)."""
        token = self.take()
        if token.kind == "name":
            key: str | None = str(token.value)
        elif token.kind == "string":
            key = plain_text(token)
        else:
            raise BicepSyntaxError(
                token.line, f"expected a property name, found {describe_token(token)}"
            )
        self.expect("op", ":")
        return Member(key, token.line, self.expression())

    def array(self) -> Node:
        """``[ item … ]`` or ``[for … in …: body]``."""
        line = self.take().line
        self.skip_newlines()
        if self.at("name", "for"):
            return self.for_expression(line)
        items: list[Node] = []
        while not self.at("op", "]"):
            items.append(self.expression())
            self.separator("]")
        self.take()
        return Arr(line, items)

    def for_expression(self, line: int) -> ForExpr:
        """``for x in xs: body`` / ``for (x, i) in xs: if (c) body`` up to the ``]``."""
        self.take()
        if self.at("op", "("):
            self.take()
            names = [str(self.expect("name").value)]
            self.expect("op", ",")
            names.append(str(self.expect("name").value))
            self.expect("op", ")")
        else:
            names = [str(self.expect("name").value)]
        self.expect("name", "in")
        self.expression()
        self.expect("op", ":")
        self.bound.extend(names)
        body = self.conditional() if self.at("name", "if") else self.expression()
        del self.bound[len(self.bound) - len(names) :]
        self.skip_newlines()
        self.expect("op", "]")
        return ForExpr(line, body)


def parse_bicep(text: str, path: str = "<inline>") -> BicepFile:
    """Read one .bicep file (raises BicepSyntaxError on Bicep the reader does not know)."""
    return Parser(Lexer(text).tokens(), path).parse_file()


# --------------------------------------------------------------------------------------------
# Type data
# --------------------------------------------------------------------------------------------

ANY: dict[str, object] = {"$type": "AnyType"}


class TypeIndex:
    """bicep-types v3 data: resource types by ``type@apiVersion`` and the type list."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        """Index ``data`` (``{"resources": {type@api: {"type": "#/N"}}, "types": [...]}``)."""
        self.types: list[dict] = list(data["types"])
        # Bicep matches resource types without regard to case.
        self.resources = {key.lower(): entry for key, entry in data["resources"].items()}

    @classmethod
    def load(cls, path: Path) -> TypeIndex:
        """Read a types.trimmed.json file."""
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def resource(self, type_api: str) -> dict | None:
        """The ResourceType of ``type@apiVersion``, or None when it is not listed."""
        entry = self.resources.get(type_api.lower())
        return self.deref(entry["type"]) if entry else None

    def versions(self, type_name: str) -> list[str]:
        """The API versions listed for a resource type."""
        prefix = type_name.lower() + "@"
        return sorted(key[len(prefix) :] for key in self.resources if key.startswith(prefix))

    def deref(self, ref: object) -> dict:
        """A type from ``"#/N"``, ``{"$ref": "#/N"}`` or an inline type dict."""
        if isinstance(ref, dict) and "$ref" in ref:
            ref = ref["$ref"]
        if isinstance(ref, str) and ref.startswith("#/"):
            return self.types[int(ref[2:])]
        if isinstance(ref, dict) and "$type" in ref:
            return ref
        raise ValueError(f"not a type reference: {ref!r}")

    def kinds(self, type_: dict) -> set[str]:
        """Value kinds a type accepts (string, int, bool, object, array; AnyType all)."""
        simple = {
            "StringType": "string",
            "StringLiteralType": "string",
            "IntegerType": "int",
            "BooleanType": "bool",
            "ObjectType": "object",
            "DiscriminatedObjectType": "object",
            "ArrayType": "array",
            "NullType": "null",
        }
        if type_["$type"] in simple:
            return {simple[type_["$type"]]}
        if type_["$type"] == "UnionType":
            return set().union(*(self.kinds(self.deref(e)) for e in type_["elements"]))
        return {"string", "int", "bool", "object", "array", "null"}

    def of_kind(self, type_: dict, kind: str) -> list[dict]:
        """The alternatives of ``type_`` that accept ``kind`` values (ANY for AnyType)."""
        if type_["$type"] == "AnyType":
            return [ANY]
        if type_["$type"] == "UnionType":
            found: list[dict] = []
            for element in type_["elements"]:
                found += self.of_kind(self.deref(element), kind)
            return found
        return [type_] if kind in self.kinds(type_) else []

    def describe(self, type_: dict) -> str:
        """A type as a problem line shows it."""
        kind = type_["$type"]
        if kind == "StringLiteralType":
            return show(type_["value"])
        if kind == "UnionType":
            shown = [self.describe(self.deref(e)) for e in type_["elements"]]
            return " | ".join(shown[:12] + (["…"] if len(shown) > 12 else []))
        if kind == "IntegerType":
            return "int" + describe_range(type_.get("minValue"), type_.get("maxValue"))
        if kind in ("ObjectType", "DiscriminatedObjectType"):
            return f"object {type_.get('name', '')}".rstrip()
        if kind == "ArrayType":
            return "array"
        return {"StringType": "string", "BooleanType": "bool", "AnyType": "any"}.get(kind, kind)


def show(value: object) -> str:
    """A literal value as Bicep writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "'" + value.replace("'", "\\'") + "'"
    return str(value)


def describe_range(low: int | None, high: int | None) -> str:
    """`` 40..1000``, `` >= 1`` or ``""``."""
    if low is not None and high is not None:
        return f" {low}..{high}"
    if low is not None:
        return f" >= {low}"
    if high is not None:
        return f" <= {high}"
    return ""


def literal_problem(types: TypeIndex, value: object, type_: dict) -> str | None:
    """Why a literal value is not allowed by ``type_`` (None when it is)."""
    kind = type_["$type"]
    if value is None or kind == "AnyType":
        return None  # null leaves an optional property unset
    if kind == "UnionType":
        if any(literal_problem(types, value, types.deref(e)) is None for e in type_["elements"]):
            return None
        return f"{show(value)} is not allowed: expected {types.describe(type_)}"
    check = SCALAR_CHECKS.get(kind)
    if check is None:
        return f"{show(value)} is not allowed: expected {types.describe(type_)}"
    return check(value, type_)


def string_literal_problem(value: object, type_: dict) -> str | None:
    """Why a value is not the one string a StringLiteralType allows."""
    if value == type_["value"]:
        return None
    return f"{show(value)} is not allowed: expected {show(type_['value'])}"


def integer_problem(value: object, type_: dict) -> str | None:
    """Why a value is not an integer inside an IntegerType's range."""
    if type(value) is not int:
        return f"{show(value)} is not allowed: expected an int"
    low, high = type_.get("minValue"), type_.get("maxValue")
    if (low is not None and value < low) or (high is not None and value > high):
        return f"{value} is out of range{describe_range(low, high)}{note(type_)}"
    return None


def string_problem(value: object, type_: dict) -> str | None:
    """Why a value is not a string of a StringType's length and pattern."""
    if not isinstance(value, str):
        return f"{show(value)} is not allowed: expected a string"
    low, high = type_.get("minLength"), type_.get("maxLength")
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        return f"{show(value)} has length {len(value)}, allowed{describe_range(low, high)}"
    pattern = type_.get("pattern")
    try:
        if pattern and not re.search(pattern, value):
            return f"{show(value)} does not match the pattern {pattern}"
    except re.error:
        return None  # a .NET pattern Python cannot read: not checked
    return None


def boolean_problem(value: object, type_: dict) -> str | None:
    """Why a value is not a bool."""
    return None if isinstance(value, bool) else f"{show(value)} is not allowed: expected a bool"


#: Literal checks by scalar type kind.
SCALAR_CHECKS: dict[str, Callable[[object, dict], str | None]] = {
    "StringLiteralType": string_literal_problem,
    "StringType": string_problem,
    "IntegerType": integer_problem,
    "BooleanType": boolean_problem,
}


def note(type_: dict) -> str:
    """The deploy rule behind a narrowed type, for problem lines."""
    return f" ({type_['note']})" if "note" in type_ else ""


# --------------------------------------------------------------------------------------------
# Checker
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Problem:
    """One problem, at the line where the offending text is written."""

    file: str
    line: int
    resource: str
    type_api: str
    path: str
    message: str

    def __str__(self) -> str:
        """``file:line: resource symbol (type@api): path: problem``."""
        if not self.resource:
            return f"{self.file}:{self.line}: {self.message}"
        where = f"resource {self.resource} ({self.type_api})"
        return f"{self.file}:{self.line}: {where}: {self.path or '(body)'}: {self.message}"


@dataclass(frozen=True)
class Report:
    """What a run found."""

    resources: int
    problems: list[Problem]


@dataclass(frozen=True)
class Caller:
    """A value a ``module`` statement passes to one param of another file."""

    file: BicepFile
    module: Module
    value: Node


@dataclass(frozen=True)
class Walk:
    """Where a check stands: the file the node is in, the resource, how it got there."""

    file: BicepFile
    resource: Resource
    type_api: str
    rules: tuple[DeployRule, ...]
    trail: tuple[str, ...] = ()
    seen: frozenset[tuple[str, str]] = frozenset()

    def into(self, file: BicepFile, step: str, key: tuple[str, str]) -> Walk | None:
        """Follow a var, param default or module caller (None when already followed)."""
        if key in self.seen:
            return None
        return Walk(
            file,
            self.resource,
            self.type_api,
            self.rules,
            (*self.trail, step),
            self.seen | {key},
        )


def type_name_of(type_api: str) -> str:
    """``Microsoft.Web/sites@2024-04-01`` -> ``Microsoft.Web/sites``."""
    return type_api.partition("@")[0]


def join_path(path: str, key: str) -> str:
    """``properties`` + ``siteConfig`` -> ``properties.siteConfig``."""
    return f"{path}.{key}" if path else key


def rule_path(path: str) -> str:
    """A property path with array positions dropped, as DEPLOY_RULES write paths."""
    return re.sub(r"\[[^\]]*\]", "[]", path)


def sets_path(obj: Obj, dotted: str) -> bool:
    """Whether an object literal sets the dotted property path."""
    node: Node = obj
    for key in dotted.split("."):
        found = member(node, key) if isinstance(node, Obj) else None
        if found is None:
            return False
        node = found.value
    return True


class Checker:
    """Holds every resource of a set of parsed files against the type data."""

    def __init__(
        self,
        files: Mapping[str, BicepFile],
        types: TypeIndex,
        rules: tuple[DeployRule, ...] = DEPLOY_RULES,
    ) -> None:
        """Check ``files`` (by path) with ``types`` and the deploy ``rules``."""
        self.files = files
        self.types = types
        self.rules = rules
        self.problems: list[Problem] = []
        self.callers = self.index_callers()

    def index_callers(self) -> dict[tuple[str, str], list[Caller]]:
        """What every module statement passes, by (target file, param name)."""
        callers: dict[tuple[str, str], list[Caller]] = {}
        for file in self.files.values():
            for module in file.modules:
                target = posixpath.normpath(
                    posixpath.join(posixpath.dirname(file.path), module.path)
                )
                body = body_object(module.body)
                params = member(body, "params") if body else None
                if params is None or not isinstance(params.value, Obj):
                    continue
                for item in params.value.members:
                    if item.key is not None:
                        callers.setdefault((target, item.key), []).append(
                            Caller(file, module, item.value)
                        )
        return callers

    def run(self) -> int:
        """Check every resource; the number of resource declarations checked."""
        count = 0
        for file in self.files.values():
            for resource in file.resources:
                self.check_resource(file, resource)
                count += 1
        return count

    # --- reporting ---

    def report(self, walk: Walk, line: int, path: str, message: str) -> None:
        """Record a problem at ``line`` of the walk's current file."""
        if walk.trail:
            message += f" (via {' -> '.join(walk.trail)})"
        self.problems.append(
            Problem(walk.file.path, line, walk.resource.symbol, walk.type_api, path, message)
        )

    def attempt(self, check: Callable[[], None]) -> list[Problem]:
        """Run a check aside; the problems it would report."""
        kept, self.problems = self.problems, []
        try:
            check()
            return self.problems
        finally:
            self.problems = kept

    # --- resources ---

    def check_resource(self, file: BicepFile, resource: Resource) -> None:
        """Type@apiVersion, scope, then (unless ``existing``) the whole body."""
        walk = Walk(file, resource, resource.type_api, ())
        type_api = self.full_type(file, resource, walk)
        if type_api is None:
            return
        walk = Walk(file, resource, type_api, ())
        resource_type = self.types.resource(type_api)
        if resource_type is None:
            self.report(walk, resource.line, "(type)", self.unknown_type(type_api))
            return
        self.check_parent(file, resource, walk)
        body = body_object(resource.body)
        if resource.existing or body is None:
            return  # an existing resource is a reference: nothing of it is deployed
        self.check_scope(file, resource, body, resource_type, walk)
        rules = tuple(
            rule
            for rule in self.rules
            if rule.resource_type.lower() == type_name_of(type_api).lower()
            and sets_path(body, rule.when_set)
        )
        walk = Walk(file, resource, type_api, rules)
        self.check_object(walk, body, self.types.deref(resource_type["body"]), "", top=True)

    def unknown_type(self, type_api: str) -> str:
        """The problem text for a type@apiVersion the data does not list."""
        type_name = type_name_of(type_api)
        versions = self.types.versions(type_name)
        if versions:
            return f"API version not in Bicep's type data (listed: {', '.join(versions)})"
        return (
            "type not in Bicep's type data (types.trimmed.json holds the project's types only: "
            "add it as its SOURCES.md explains)"
        )

    def parent_of(self, file: BicepFile, resource: Resource) -> Resource | None:
        """The parent resource: the enclosing one, or the symbol given as ``parent:``."""
        if resource.enclosing is not None:
            return resource.enclosing
        body = body_object(resource.body)
        parent = member(body, "parent") if body else None
        if parent is None or not isinstance(parent.value, Ref):
            return None
        return next((r for r in file.resources if r.symbol == parent.value.name), None)

    def full_type(
        self, file: BicepFile, resource: Resource, walk: Walk, depth: int = 0
    ) -> str | None:
        """``type@api`` with a short child type (``'queues@…'``) prefixed by its parent's."""
        type_name, _, api = resource.type_api.partition("@")
        if not api:
            self.report(walk, resource.line, "(type)", "resource type has no @apiVersion")
            return None
        if "." in type_name.split("/")[0]:
            return resource.type_api  # a full type: Provider.Namespace/…
        parent = self.parent_of(file, resource)
        if parent is None or depth > 10:
            self.report(walk, resource.line, "(type)", "a short child type needs a parent resource")
            return None
        parent_type = self.full_type(file, parent, walk, depth + 1)
        if parent_type is None:
            return None
        return f"{type_name_of(parent_type)}/{type_name}@{api}"

    def check_parent(self, file: BicepFile, resource: Resource, walk: Walk) -> None:
        """A child's full type must be its parent's type plus one segment."""
        parent = self.parent_of(file, resource)
        if parent is None:
            return
        parent_type = self.full_type(file, parent, walk)
        if parent_type is None:
            return
        parent_name = type_name_of(parent_type).lower()
        child_name = type_name_of(walk.type_api).lower()
        rest = child_name.removeprefix(parent_name + "/")
        if rest == child_name or "/" in rest:
            message = f"type is not a child of its parent {parent.symbol} ({parent_type})"
            self.report(walk, resource.line, "(type)", message)

    def check_scope(
        self, file: BicepFile, resource: Resource, body: Obj, resource_type: dict, walk: Walk
    ) -> None:
        """A resource deployed at the file's own scope must be writable there."""
        if resource.enclosing is not None or member(body, "scope") or member(body, "parent"):
            return  # children inherit their parent's scope; scope: is an extension or another scope
        bit = SCOPE_BITS.get(file.target_scope)
        writable = resource_type.get("writableScopes")
        if bit is not None and writable is not None and not writable & bit:
            message = f"cannot be deployed at targetScope '{file.target_scope}'"
            self.report(walk, resource.line, "(type)", message)

    # --- values ---

    def check_value(self, walk: Walk, node: Node, type_ref: object, path: str) -> None:
        """A value against a type: literals, objects, arrays, refs, other expressions."""
        type_ = self.types.deref(type_ref)
        if isinstance(node, Lit):
            problem = literal_problem(self.types, node.value, type_)
            if problem:
                self.report(walk, node.line, path, problem)
        elif isinstance(node, Obj):
            self.check_structure(walk, node, type_, path, "object")
        elif isinstance(node, Arr | ForExpr):
            self.check_structure(walk, node, type_, path, "array")
        elif isinstance(node, Ternary):
            for branch in node.branches:
                self.check_value(walk, branch, type_, path)
        elif isinstance(node, Ref):
            self.check_ref(walk, node, type_, path)
        else:
            kind = (
                CALL_KINDS.get(node.name) if isinstance(node, Call) else getattr(node, "kind", None)
            )
            self.check_kind(walk, node.line, kind, type_, path)

    def check_kind(self, walk: Walk, line: int, kind: str | None, type_: dict, path: str) -> None:
        """A value of a known kind (string, int, …) must be of a kind the type accepts."""
        if kind is not None and kind not in self.types.kinds(type_):
            message = f"a {kind} value where the type expects {self.types.describe(type_)}"
            self.report(walk, line, path, message)

    def check_structure(self, walk: Walk, node: Node, type_: dict, path: str, kind: str) -> None:
        """An object or array literal against the alternatives of its kind in the type."""
        candidates = self.types.of_kind(type_, kind)
        if not candidates:
            self.check_kind(walk, node.line, kind, type_, path)
            return
        if any(candidate is ANY for candidate in candidates):
            return

        def check(candidate: dict) -> Callable[[], None]:
            if isinstance(node, Obj):
                return lambda: self.check_object(walk, node, candidate, path)
            return lambda: self.check_array(walk, node, candidate, path)

        # A union may offer several objects (or arrays): the value is fine if one takes it.
        first: list[Problem] | None = None
        for candidate in candidates:
            problems = self.attempt(check(candidate))
            if not problems:
                return
            first = problems if first is None else first
        self.problems += first or []

    def check_array(self, walk: Walk, node: Node, type_: dict, path: str) -> None:
        """Each item of an array literal, or a ``for`` body, against the item type."""
        if isinstance(node, ForExpr):
            body = node.body.body if isinstance(node.body, IfExpr) else node.body
            self.check_value(walk, body, type_["itemType"], f"{path}[*]")
        elif isinstance(node, Arr):
            for index, item in enumerate(node.items):
                self.check_value(walk, item, type_["itemType"], f"{path}[{index}]")

    def check_object(self, walk: Walk, obj: Obj, type_: dict, path: str, top: bool = False) -> None:
        """Members of an object literal: known, writable, allowed; required ones present."""
        properties, additional, required = self.object_shape(walk, obj, type_, path)
        for item in obj.members:
            if item.spread or (top and item.key in LANGUAGE_KEYS):
                continue
            if item.key is None or item.key not in properties:
                self.check_extra(walk, item, properties, additional, path)
                continue
            prop = properties[item.key]
            sub = join_path(path, item.key)
            if prop.get("flags", 0) & READ_ONLY:
                self.report(walk, item.line, sub, "read-only property (Azure sets it): remove it")
                continue
            if prop.get("type") is not None:
                self.check_value(
                    walk, item.value, self.apply_rules(walk, item, sub, prop["type"]), sub
                )
        if any(item.spread for item in obj.members):
            return  # a spread object may supply the rest
        keys = {item.key for item in obj.members}
        for name in required:
            if name not in keys:
                self.report(walk, obj.line, path, f"required property {name!r} is missing")

    def check_extra(
        self, walk: Walk, item: Member, properties: dict, additional: object, path: str
    ) -> None:
        """A member the type does not name: checked against additionalProperties, if any."""
        if additional is not None:
            self.check_value(walk, item.value, additional, join_path(path, item.key or "*"))
            return
        if item.key is None:
            return  # a computed name cannot be checked
        close = difflib.get_close_matches(item.key, list(properties), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.report(walk, item.line, join_path(path, item.key), f"unknown property{hint}")

    def object_shape(
        self, walk: Walk, obj: Obj, type_: dict, path: str
    ) -> tuple[dict, object, list[str]]:
        """(properties, additionalProperties, required names) of an object or its variant."""
        if type_["$type"] == "ObjectType":
            properties = type_.get("properties", {})
            return properties, type_.get("additionalProperties"), required_names(properties)
        if type_["$type"] != "DiscriminatedObjectType":
            return {}, ANY, []
        base = dict(type_.get("baseProperties", {}))
        variant = self.variant(walk, obj, type_, path)
        if variant is not None:
            properties = {**base, **self.types.deref(variant).get("properties", {})}
            return properties, None, required_names(properties)
        # The discriminator is computed (or wrong, and reported): accept any variant's names.
        merged = dict(base)
        for element in type_["elements"].values():
            for name, prop in self.types.deref(element).get("properties", {}).items():
                merged.setdefault(name, {"type": ANY, "flags": prop.get("flags", 0)})
        return merged, None, required_names(base)

    def variant(self, walk: Walk, obj: Obj, type_: dict, path: str) -> object | None:
        """The element a literal discriminator selects (None when it is not a literal)."""
        name = type_["discriminator"]
        found = member(obj, name)
        if found is None or not isinstance(found.value, Lit):
            return None
        elements = type_["elements"]
        if found.value.value in elements:
            return elements[found.value.value]
        allowed = " | ".join(show(key) for key in elements)
        message = f"{show(found.value.value)} is not allowed: expected {allowed}"
        self.report(walk, found.line, join_path(path, name), message)
        return None

    def apply_rules(self, walk: Walk, item: Member, path: str, type_ref: object) -> object:
        """Report a property a deploy rule forbids; narrow the type a rule restricts."""
        type_ = self.types.deref(type_ref)
        for rule in walk.rules:
            if rule.path != rule_path(path):
                continue
            if rule.forbidden:
                self.report(
                    walk, item.line, path, f"rejected at deploy: {rule.reason} [{rule.source}]"
                )
            if rule.min_value is not None or rule.max_value is not None:
                type_ = narrowed(type_, rule)
        return type_

    # --- params and vars ---

    def check_ref(self, walk: Walk, node: Ref, type_: dict, path: str) -> None:
        """A name: a var is checked through its value, a param through its decorators."""
        if node.bound:
            return  # loop or lambda variable: its value is not known here
        var = walk.file.vars.get(node.name)
        if var is not None:
            inner = walk.into(walk.file, f"var {var.name}", (walk.file.path, "var " + var.name))
            if inner is not None:
                self.check_value(inner, var.value, type_, path)
            return
        param = walk.file.params.get(node.name)
        if param is not None:
            self.check_param(walk, param, type_, path)

    def check_param(self, walk: Walk, param: Param, type_: dict, path: str) -> None:
        """A param's kind and decorators, its default, and what module callers pass."""
        kind = PARAM_KINDS.get(param.type_name or "")
        if kind is not None and kind not in self.types.kinds(type_):
            expected = self.types.describe(type_)
            self.report(
                walk, param.line, path, f"param {param.name} is {kind}, expected {expected}"
            )
            return
        allowed = param.allowed()
        if allowed is not None:
            for value in allowed:
                problem = literal_problem(self.types, value, type_)
                if problem:
                    self.report(walk, param.line, path, f"param {param.name} @allowed: {problem}")
        elif type_["$type"] == "IntegerType":
            self.check_param_bounds(walk, param, type_, path, ("minValue", "maxValue"))
        elif type_["$type"] == "StringType":
            self.check_param_bounds(walk, param, type_, path, ("minLength", "maxLength"))
        key = (walk.file.path, "param " + param.name)
        if param.default is not None:
            inner = walk.into(walk.file, f"default of param {param.name}", key)
            if inner is not None:
                self.check_value(inner, param.default, type_, path)
        for caller in self.callers.get((walk.file.path, param.name), []):
            step = f"param {param.name} <- module {caller.module.symbol} ({caller.file.path})"
            key = (caller.file.path, f"module {caller.module.symbol} param {param.name}")
            inner = walk.into(caller.file, step, key)
            if inner is not None:
                self.check_value(inner, caller.value, type_, path)

    def check_param_bounds(
        self, walk: Walk, param: Param, type_: dict, path: str, names: tuple[str, str]
    ) -> None:
        """A decorated param's @min…/@max… must lie inside the type's own bounds."""
        low_name, high_name = names
        low, high = param.bound(low_name), param.bound(high_name)
        if low is None and high is None:
            return  # undecorated: its value is not known here
        type_low, type_high = type_.get(low_name), type_.get(high_name)
        allowed = f"allowed{describe_range(type_low, type_high)}{note(type_)}"
        if type_low is not None and (low is None or low < type_low):
            said = f"@{low_name}({low})" if low is not None else f"no @{low_name}"
            self.report(walk, param.line, path, f"param {param.name}: {said}, {allowed}")
        if type_high is not None and (high is None or high > type_high):
            said = f"@{high_name}({high})" if high is not None else f"no @{high_name}"
            self.report(walk, param.line, path, f"param {param.name}: {said}, {allowed}")


def required_names(properties: Mapping[str, dict]) -> list[str]:
    """Names of the required, writable properties."""
    return [
        name
        for name, prop in properties.items()
        if prop.get("flags", 0) & REQUIRED and not prop.get("flags", 0) & READ_ONLY
    ]


def narrowed(type_: dict, rule: DeployRule) -> dict:
    """An IntegerType with a deploy rule's range applied (and the rule named in problems)."""
    low, high = type_.get("minValue"), type_.get("maxValue")
    if rule.min_value is not None:
        low = rule.min_value if low is None else max(low, rule.min_value)
    if rule.max_value is not None:
        high = rule.max_value if high is None else min(high, rule.max_value)
    return {
        "$type": "IntegerType",
        "minValue": low,
        "maxValue": high,
        "note": f"{rule.reason} [{rule.source}]",
    }


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def check_sources(
    sources: Mapping[str, str], types: TypeIndex, rules: tuple[DeployRule, ...] = DEPLOY_RULES
) -> Report:
    """Parse and check a set of .bicep texts, by path (module paths resolve among them)."""
    files: dict[str, BicepFile] = {}
    problems: list[Problem] = []
    for path, text in sources.items():
        try:
            files[path] = parse_bicep(text, path)
        except BicepSyntaxError as error:
            problems.append(
                Problem(path, error.line, "", "", "", f"cannot read this Bicep: {error}")
            )
    checker = Checker(files, types, rules)
    count = checker.run()
    return Report(count, sorted(set(problems + checker.problems)))


def infra_sources(root: Path = REPO) -> dict[str, str]:
    """Every .bicep file under ``root``/infra, by path relative to ``root``."""
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((root / "infra").rglob("*.bicep"))
    }


def types_path() -> Path:
    """$BICEP_TYPES, else shared/bicep-types/types.trimmed.json beside the repository."""
    return Path(os.environ.get("BICEP_TYPES") or DEFAULT_TYPES)


def main() -> int:
    """Check infra/; print the problems and a summary; the exit status."""
    path = types_path()
    if not path.is_file():
        print(f"infra_types: Bicep type data not found: {path} (set BICEP_TYPES)", file=sys.stderr)
        return 2
    report = check_sources(infra_sources(), TypeIndex.load(path))
    for problem in report.problems:
        print(problem)
    print(f"infra_types: {report.resources} resources checked, {len(report.problems)} problems")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
