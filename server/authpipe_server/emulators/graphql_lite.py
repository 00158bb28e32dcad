"""Just enough GraphQL for the Buffer emulator: parse one query's selection sets (fields,
aliases, nested selections) and run it over plain dicts against a tiny schema.

Arguments, variables in use, fragments and directives are refused with a validation error.
Messages follow graphql-js, which Buffer's Apollo server uses.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

# type name -> field name -> GraphQL type ("ID!", "[Organization!]!"): enough to tell scalars
# from objects and to name types in messages.
Schema = dict[str, dict[str, str]]

_TOKEN = re.compile(
    r"""(?P<skip>[\s,]+|\#[^\n]*)
      |(?P<spread>\.\.\.)
      |(?P<punct>[{}():!$@=\[\]])
      |(?P<name>[_A-Za-z][_0-9A-Za-z]*)
      |(?P<string>"(?:[^"\\\n]|\\.)*")
      |(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)""",
    re.VERBOSE,
)


class GraphQLError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code  # GRAPHQL_PARSE_FAILED | GRAPHQL_VALIDATION_FAILED


@dataclasses.dataclass
class Field:
    name: str
    alias: str
    selections: list[Field] | None


def _tokens(source: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise GraphQLError(f'Syntax Error: Unexpected character: "{source[position]}".', "GRAPHQL_PARSE_FAILED")
        if match.lastgroup != "skip":
            tokens.append(match.group())
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            found = "<EOF>" if token is None else f'"{token}"'
            wanted = f'"{expected}"' if expected else "Name"
            raise GraphQLError(f"Syntax Error: Expected {wanted}, found {found}.", "GRAPHQL_PARSE_FAILED")
        self.index += 1
        return token

    def name(self) -> str:
        token = self.take()
        if not re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]*", token):
            raise GraphQLError(f'Syntax Error: Expected Name, found "{token}".', "GRAPHQL_PARSE_FAILED")
        return token

    def skip_parenthesized(self) -> None:
        depth = 0
        while True:
            token = self.take()
            depth += {"(": 1, ")": -1}.get(token, 0)
            if depth == 0:
                return

    def document(self) -> tuple[str, list[Field]]:
        operation = "query"
        if self.peek() in ("query", "mutation", "subscription"):
            operation = self.take()
            if self.peek() not in ("{", "(", None):
                self.name()
            if self.peek() == "(":
                self.skip_parenthesized()  # variable definitions: declared, never usable here
        selections = self.selection_set()
        if self.peek() is not None:
            raise GraphQLError(
                "This emulator runs one operation per request, without fragments.", "GRAPHQL_VALIDATION_FAILED"
            )
        return operation, selections

    def selection_set(self) -> list[Field]:
        self.take("{")
        fields: list[Field] = []
        while self.peek() != "}":
            if self.peek() in ("...", "@"):
                raise GraphQLError(
                    "Fragments and directives are not supported by this emulator.", "GRAPHQL_VALIDATION_FAILED"
                )
            alias = name = self.name()
            if self.peek() == ":":
                self.take(":")
                name = self.name()
            if self.peek() == "(":
                raise GraphQLError(f'Unknown argument on field "{name}".', "GRAPHQL_VALIDATION_FAILED")
            selections = self.selection_set() if self.peek() == "{" else None
            fields.append(Field(name, alias, selections))
        self.take("}")
        if not fields:
            raise GraphQLError('Syntax Error: Expected Name, found "}".', "GRAPHQL_PARSE_FAILED")
        return fields


def parse(source: str) -> tuple[str, list[Field]]:
    """(operation type, top-level fields) of a single-operation document."""
    return _Parser(source).document()


def _named_type(graphql_type: str) -> str:
    return graphql_type.strip("[]!")


def validate(schema: Schema, type_name: str, fields: list[Field]) -> None:
    for field in fields:
        if field.name == "__typename":
            continue
        if field.name not in schema[type_name]:
            raise GraphQLError(f'Cannot query field "{field.name}" on type "{type_name}".', "GRAPHQL_VALIDATION_FAILED")
        field_type = schema[type_name][field.name]
        named = _named_type(field_type)
        if named in schema and field.selections is None:
            raise GraphQLError(
                f'Field "{field.name}" of type "{field_type}" must have a selection of subfields. '
                f'Did you mean "{field.name} {{ ... }}"?',
                "GRAPHQL_VALIDATION_FAILED",
            )
        if named not in schema and field.selections is not None:
            raise GraphQLError(
                f'Field "{field.name}" must not have a selection since type "{field_type}" has no subfields.',
                "GRAPHQL_VALIDATION_FAILED",
            )
        if field.selections is not None:
            validate(schema, named, field.selections)


def execute(schema: Schema, type_name: str, fields: list[Field], value: dict[str, Any]) -> dict[str, Any]:
    """Selects the (validated) fields from `value`; object fields recurse, lists element-wise."""
    result: dict[str, Any] = {}
    for field in fields:
        if field.name == "__typename":
            result[field.alias] = type_name
            continue
        item = value.get(field.name)
        if field.selections is not None and item is not None:
            child_type = _named_type(schema[type_name][field.name])
            if isinstance(item, list):
                item = [execute(schema, child_type, field.selections, element) for element in item]
            else:
                item = execute(schema, child_type, field.selections, item)
        result[field.alias] = item
    return result
