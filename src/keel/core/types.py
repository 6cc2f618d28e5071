"""Column types that are exact on SQLite and PostgreSQL.

SQLite's NUMERIC affinity stores big integers as 8-byte floats, so 10**30 wei comes back wrong.
These types store exact text on SQLite and native exact types on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Dialect, Numeric, String, TypeDecorator
from sqlalchemy.types import DateTime, TypeEngine

_UINT_DIGITS = 78  # 2**256 has 78 decimal digits: every on-chain amount fits.


class BigUInt(TypeDecorator[int]):
    """A non-negative integer up to 2**256: NUMERIC(78,0) on PostgreSQL, zero-padded text on
    SQLite (so ``ORDER BY`` and comparisons still sort numerically)."""

    impl = String(_UINT_DIGITS)
    cache_ok = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(_UINT_DIGITS, 0))
        return dialect.type_descriptor(String(_UINT_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"BigUInt needs a non-negative int, got {value!r}")
        if value >= 10**_UINT_DIGITS:
            raise ValueError("BigUInt overflow")
        if dialect.name == "postgresql":
            return Decimal(value)
        return str(value).zfill(_UINT_DIGITS)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


class ExactDecimal(TypeDecorator[Decimal]):
    """A Decimal stored exactly: NUMERIC(precision, scale) on PostgreSQL, canonical text on
    SQLite. Values with more fractional digits than ``scale`` are refused, never rounded."""

    impl = String(64)
    cache_ok = True

    def __init__(self, precision: int = 38, scale: int = 18) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def __repr__(self) -> str:  # Alembic autogenerate renders columns with repr()
        return f"{type(self).__name__}({self.precision}, {self.scale})"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))
        return dialect.type_descriptor(String(64))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal) or not value.is_finite():
            raise ValueError(f"ExactDecimal needs a finite Decimal, got {value!r}")
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > self.scale and value != value.quantize(Decimal(1).scaleb(-self.scale)):
            raise ValueError(f"{value} has more than {self.scale} fractional digits")
        if dialect.name == "postgresql":
            return value
        return format(value.normalize(), "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # Same canonical form on both engines: no trailing zeros from NUMERIC's scale, and
        # no exponent (normalize() alone turns 100 into 1E+2).
        return Decimal(format(Decimal(str(value)).normalize(), "f"))


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both engines (naive values are refused)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("UTCDateTime needs an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
