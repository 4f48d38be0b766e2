"""`unindexed(column)`: the column, which the database's planner may not pick an index by.

SQLite reads a unary plus (`+column`) that way; elsewhere it is the column itself. Built
as the documented way of adding a SQL function (FunctionElement with @compiles).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import visitors
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class unindexed(FunctionElement[Any]):
    inherit_cache = True
    name = "unindexed"


@compiles(unindexed)
def _as_column(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _as_plus_column(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


def without_indexes_of(
    clause: ColumnElement[bool], columns: tuple[Any, ...]
) -> ColumnElement[bool]:
    """`clause` with each of `columns` read unindexed: its planner then picks the index
    of another column of the clause."""

    def replace(element: Any, **_: Any) -> Any:
        if any(element is column for column in columns):
            return unindexed(element)
        return None

    return visitors.replacement_traverse(clause, {}, replace)
