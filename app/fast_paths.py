"""Every use of a library's private internals, in one place, behind `FAST_PATHS`.

The service is fast partly because three libraries are driven below their public APIs:

- SQLAlchemy: statements compiled once and run on a raw sqlite3 cursor
  (`StatementCompiler`), without SQLAlchemy's per-execution machinery.
- graphql-core and Strawberry: an execution context that resolves plain leaf fields in one
  step and leaves no reference cycles (`LeafFieldExecutionContext`).
- Strawberry: input types built by a plan made once (`built_once`).

Each was measured (bench/RESULTS.md) and each is tested against the public path it
replaces: the whole suite runs with `FAST_PATHS=false` too (.ci/run), where none of this
module is used. The pins in pyproject.toml name the minor releases these were written
against; an upgrade of SQLAlchemy, graphql-core or Strawberry must re-run both suites.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.util import LRUCache


# ------------------------------------------------------------------------------ SQLAlchemy


class StatementCompiler:
    """Core statements turned into SQL and positional arguments for a raw DB-API cursor.

    The columns' own bind processors convert the values, so the driver receives what
    SQLAlchemy would send it, without SQLAlchemy's per-execution machinery (about 0.2 ms
    a statement: as much as SQLite's own work for an insert that maintains a dozen
    indexes). Private: `_compile_w_cache`, `_process_parameters_for_postcompile`,
    `_bind_processors`.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._compiled: dict[Any, Any] = {}  # by reusable statement
        # Statements built per call, by the shape SQLAlchemy's cache key names.
        self._shaped: LRUCache[Any, Any] = LRUCache(256)

    def is_compiled(self, statement: Any) -> bool:
        return statement in self._compiled

    def _compiled_once(self, statement: Any) -> Any:
        compiled = self._compiled.get(statement)
        if compiled is None:
            if len(self._compiled) > 256:
                self._compiled.clear()
            compiled = self._compiled[statement] = statement.compile(
                dialect=self.dialect
            )
        return compiled

    def prepare(
        self, statement: Any, values: dict[str, Any] | None
    ) -> tuple[str, list[Any]]:
        """The SQL and its positional arguments.

        With `values`, `statement` is a reusable one (bind parameters, no expanding IN
        lists) and is compiled once. An INSERT is compiled with all its columns, so `values`
        must give every one (defaults are not applied here): a missing one is an error,
        never a silent NULL. Without `values`, `statement` was built for this call (a page:
        its filter's values are in it), and is compiled once per shape, as SQLAlchemy's
        own execution does: the cache key names the shape and carries the values.
        """
        if values is not None:
            compiled = self._compiled_once(statement)
            params = compiled.construct_params(values)
            names: Sequence[str] = compiled.positiontup or ()
            expanded: dict[str, Any] = {}
            sql = compiled.string
        else:
            compiled, extracted, *_ = statement._compile_w_cache(
                self.dialect,
                compiled_cache=self._shaped,
                column_keys=[],
                for_executemany=False,
                schema_translate_map=None,
            )
            state = compiled._process_parameters_for_postcompile(
                compiled.construct_params(
                    extracted_parameters=extracted,
                    escape_names=False,
                    _no_postcompile=True,
                )
            )
            params, names, expanded, sql = (
                state.parameters,
                state.positiontup or (),
                state.processors,  # those of the values an IN list expanded into
                state.statement,
            )
        binds = compiled._bind_processors  # the columns' own bind conversions
        arguments = []
        for name in names:
            process = expanded.get(name) or binds.get(name)
            value = params[name]
            arguments.append(process(value) if process is not None else value)
        return sql, arguments
