"""`--units-filter` and `--channels` expressions: keep the units (Units rows) or the channels of a counts series
(via their rows of the electrodes table) whose categorical/boolean/numeric columns match.

Grammar: one or more `column==value` or `column!=value` terms joined by `,` or ` and ` (all must hold), e.g.
`heldout==False`, `quality==good`, `quality==good,depth!=0`, `location == 'area 6v'`. Values are compared in the
column's own type: true/false/1/0 for booleans, numbers for numeric columns, text otherwise (optional quotes are
stripped).
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from nwb_ldns.data import tables
from nwb_ldns.errors import OptionError

_TERM = re.compile(r"^\s*([^=!<>\s]+)\s*(==|!=)\s*(.*?)\s*$")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def parse_filter(expression: str, option: str = "--units-filter") -> list[tuple[str, str, str]]:
    """Split an expression into (column, operator, value) terms; OptionError (naming `option`) on anything else."""
    terms = []
    for part in re.split(r",|\s+and\s+", expression.strip()):
        if not part.strip():
            continue
        match = _TERM.match(part)
        if match is None:
            raise OptionError(
                f"cannot read {option} term {part.strip()!r}; write COLUMN==VALUE or COLUMN!=VALUE "
                "(e.g. heldout==False or quality==good), several joined by commas"
            )
        column, operator, value = match.groups()
        terms.append((column, operator, value.strip("'\"")))
    if not terms:
        raise OptionError(f"{option} is empty; write COLUMN==VALUE, e.g. heldout==False")
    return terms


def _matches(values: np.ndarray, value: str, column: str, option: str = "--units-filter") -> np.ndarray:
    kind = values.dtype.kind
    if kind == "b":
        lowered = value.lower()
        if lowered not in _TRUE | _FALSE:
            raise OptionError(
                f"{option}: column {column!r} is boolean; compare it with True or False, not {value!r}"
            )
        return values == (lowered in _TRUE)
    if kind in "iuf":
        try:
            number = float(value)
        except ValueError:
            raise OptionError(
                f"{option}: column {column!r} is numeric; compare it with a number, not {value!r}"
            ) from None
        return values.astype(np.float64) == number
    return np.asarray(values).astype(str) == value


def unit_selection(
    units, expression: str | None, path: str, derived: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """Boolean mask over the Units rows selected by `expression` (all True when it is None/empty).

    `derived` adds per-unit values that are not columns of the table itself (e.g. `location` via electrodes).
    """
    derived = derived or {}
    usable = tables.scalar_columns(units, skip=("spike_times",))
    usable += [name for name in derived if name not in usable]

    def values_of(column: str) -> np.ndarray:
        if column in derived and not tables.has_column(units, column):
            return np.asarray(derived[column])
        return tables.scalar_values(tables.column(units, column))

    return select_rows(expression, len(units), usable, values_of, where=path, option="--units-filter",
                       what="units")


def select_rows(expression: str | None, n: int, usable: list[str], values_of: Callable[[str], np.ndarray], *,
                where: str, option: str, what: str) -> np.ndarray:
    """Boolean mask over n rows whose columns (`values_of(name)`, one value per row) satisfy `expression`.

    Why one function: `--units-filter` (Units rows) and `--channels` (electrodes rows of a counts series) share
    the grammar and the errors, which name the option, the columns one can use, and a filter that keeps nothing.
    """
    if not expression:
        return np.ones(n, dtype=bool)
    keep = np.ones(n, dtype=bool)
    present = []
    for column, operator, value in parse_filter(expression, option):
        if column not in usable:
            raise OptionError(
                f"{option}: {where} has no scalar column {column!r}; filter on one of: {', '.join(usable) or 'none'}"
            )
        values = np.asarray(values_of(column))
        hit = _matches(values, value, column, option)
        keep &= hit if operator == "==" else ~hit
        distinct = np.unique(values.astype(str))
        if len(distinct) <= 8:
            present.append(f"{column} has {', '.join(repr(v) for v in distinct.tolist())}")
    if not keep.any():
        values_text = f" ({'; '.join(present)})" if present else ""
        raise OptionError(f"{option} {expression!r} selects none of the {n} {what} of {where}{values_text}; "
                          "loosen the filter")
    return keep
