"""The document limits (depth, aliases, fragment nesting) as one validation rule.

Strawberry's QueryDepthLimiter and MaxAliasesLimiter follow every fragment spread anew,
so a document of 25 fragments each spreading the next twice took them minutes (2^25
walks). Here each fragment is measured once and its measure reused at every spread; the
measures are Strawberry's (introspection fields and leaves add no depth; an alias counts
each time its fragment is spread). The rule runs only on documents the specification's
rules accept (app.graphql.documents), so fragments exist and do not form cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

# Fragments spreading fragments: deeper than this is no client's query, and would make
# every walk of the document deep too.
MAX_FRAGMENT_NESTING = 32


@dataclass(frozen=True)
class Measure:
    depth: int
    aliases: int


def _spreads(selection_set: SelectionSetNode) -> list[str]:
    """The fragments spread anywhere in `selection_set` (without recursion)."""
    names: list[str] = []
    pending = [selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names.append(selection.name.value)
            elif (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                pending.append(selection.selection_set)
    return names


def fragment_nesting(fragments: dict[str, FragmentDefinitionNode]) -> int:
    """How deep fragments spread fragments (1: none spreads another), without recursion."""
    nesting: dict[str, int] = {}
    for root in fragments:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in nesting:
                stack.pop()
                continue
            inner = [
                n for n in _spreads(fragments[name].selection_set) if n in fragments
            ]
            waiting = [n for n in inner if n not in nesting and n not in stack]
            if waiting:
                stack.extend(waiting)
                continue
            nesting[name] = 1 + max((nesting.get(n, 0) for n in inner), default=0)
            stack.pop()
    return max(nesting.values(), default=0)


class _Measurer:
    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d
            for d in document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        self.measured: dict[str, Measure] = {}

    def selections(self, selection_set: SelectionSetNode) -> Measure:
        depth = aliases = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                measure = self.field(selection)
            elif isinstance(selection, InlineFragmentNode):
                measure = self.selections(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                measure = self.fragment(selection.name.value)
            else:
                continue
            depth = max(depth, measure.depth)
            aliases += measure.aliases
        return Measure(depth, aliases)

    def field(self, node: FieldNode) -> Measure:
        aliased = 1 if node.alias else 0
        if node.selection_set is None:
            return Measure(0, aliased)
        inner = self.selections(node.selection_set)
        # Strawberry's depth ignores introspection, but its alias count does not.
        depth = 0 if node.name.value.startswith("__") else 1 + inner.depth
        return Measure(depth, aliased + inner.aliases)

    def fragment(self, name: str) -> Measure:
        if name not in self.measured:
            self.measured[name] = Measure(0, 0)  # ends a cycle, had one slipped by
            definition = self.fragments.get(name)
            if definition is not None:
                self.measured[name] = self.selections(definition.selection_set)
        return self.measured[name]


def document_limits(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing operations deeper than `max_depth`, documents with more
    than `max_aliases` aliases, and fragments nested deeper than MAX_FRAGMENT_NESTING."""

    class DocumentLimits(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            measurer = _Measurer(context.document)
            nesting = fragment_nesting(measurer.fragments)
            if nesting > MAX_FRAGMENT_NESTING:
                context.report_error(
                    GraphQLError(
                        f"Fragments spread fragments {nesting} levels deep; at most "
                        f"{MAX_FRAGMENT_NESTING}."
                    )
                )
                return
            aliases = 0
            for definition in context.document.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                measure = measurer.selections(definition.selection_set)
                aliases += measure.aliases
                if measure.depth > max_depth:
                    name = definition.name.value if definition.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            definition,
                        )
                    )
            if aliases > max_aliases:
                context.report_error(
                    GraphQLError(f"{aliases} aliases found. Allowed: {max_aliases}")
                )

    return DocumentLimits
