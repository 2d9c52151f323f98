"""Rows wider than a page: keep what does not fit in ``_cartridge_overflow``.

PostgreSQL refuses a row whose inline part exceeds a page after TOAST (``row is too
big``, SQLSTATE 54000): many columns of small values, which TOAST does not move out of
line. The overflow column is one jsonb value, which TOAST compresses or moves out of line
whatever its size, so a row keeps columns in table order up to a byte budget and the rest
of its values go to overflow. The connector retries a refused row with smaller budgets
(`BUDGETS`) before giving up on it.
"""

from __future__ import annotations

from typing import Any

# Inline bytes kept in columns, tried in order once a row is refused; 0: every value in
# overflow (keys and the sink's columns stay).
BUDGETS = (4000, 1000, 0)
_VARLENA_INLINE = 2000  # larger values are compressed or moved out of line by TOAST


def next_budget(current: int | None) -> int | None:
    """The budget to try after ``current`` (None: not squeezed yet); None when none is left."""
    if current is None:
        return BUDGETS[0]
    later = [b for b in BUDGETS if b < current]
    return later[0] if later else None


def inline_size(value: Any) -> int:
    """About the bytes a value takes inside the row (headers and alignment included)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, float)):
        return 8
    if isinstance(value, str):
        return min(len(value.encode("utf-8", "surrogatepass")), _VARLENA_INLINE) + 4
    if isinstance(value, (bytes, bytearray, memoryview)):
        return min(len(value), _VARLENA_INLINE) + 4
    return min(len(str(value)), _VARLENA_INLINE) + 8


def squeeze(
    columns: list[str], stored: list[list[Any]], originals: dict[str, list[Any]], budget: int,
    overflow: dict[int, dict[str, Any]],
) -> set[tuple[int, str]]:
    """Per row, keep ``stored`` values in column order while they fit in ``budget`` bytes;
    move the others (their original values) to ``overflow``. ``stored`` is aligned with
    ``columns``, one list per column; changed in place. Returns the (row, column) moved."""
    moved: set[tuple[int, str]] = set()
    rows = len(stored[0]) if stored else 0
    for i in range(rows):
        used = 0
        for col, values in zip(columns, stored, strict=True):
            v = values[i]
            if v is None:
                continue
            used += inline_size(v)
            if used > budget:
                values[i] = None
                overflow.setdefault(i, {})[col] = originals[col][i]
                moved.add((i, col))
    return moved
