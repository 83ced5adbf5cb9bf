"""Instruments, expiries and contracts: the catalogue the engine fills before any candles."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import date

from expirytrack_desktop.store.base import DatabaseBase
from expirytrack_desktop.store.rows import ContractRow
from expirytrack_desktop.store.underlyings import record_retention_edge
from expirytrack_desktop.upstox.models import Contract


class CatalogStore(DatabaseBase):
    """Underlyings, expiries and contracts (part of :class:`Database`)."""

    def upsert_underlying(
        self,
        instrument_key: str,
        *,
        symbol: str | None = None,
        name: str | None = None,
        exchange: str | None = None,
        segment: str | None = None,
        underlying_type: str | None = None,
    ) -> int:
        """Insert or complete an underlying; known non-null fields are never blanked. -> id."""
        segment = segment or instrument_key.split("|", 1)[0]
        with self.transaction() as c:
            c.execute(
                "INSERT INTO underlying(instrument_key, symbol, name, exchange, segment, "
                "underlying_type) VALUES (?, COALESCE(?, (SELECT f.symbol FROM fo_underlying f "
                "WHERE f.instrument_key = ?)), ?, ?, ?, ?) "
                "ON CONFLICT(instrument_key) DO UPDATE SET "
                "symbol = COALESCE(excluded.symbol, symbol), name = COALESCE(excluded.name, name), "
                "exchange = COALESCE(excluded.exchange, exchange), "
                "segment = COALESCE(excluded.segment, segment), "
                "underlying_type = COALESCE(excluded.underlying_type, underlying_type)",
                (instrument_key, symbol, instrument_key, name, exchange, segment, underlying_type),
            )
            uid = c.execute(
                "SELECT id FROM underlying WHERE instrument_key = ?", (instrument_key,)
            ).fetchone()[0]
        self._underlying_ids[instrument_key] = uid
        return int(uid)

    def upsert_expiries(
        self,
        instrument_key: str,
        expiries: Iterable[date],
        *,
        weekly: dict[date, bool] | None = None,
    ) -> dict[date, int]:
        """Record the expiry dates the API offers for an underlying. -> {date: expiry id}.

        ``weekly`` (from the contracts' API flag) fills ``is_weekly`` when known; it is never
        inferred from the weekday.
        """
        uid = self._underlying_id(instrument_key)
        weekly = weekly or {}
        out: dict[date, int] = {}
        expiries = list(expiries)
        with self.transaction() as c:
            if expiries:  # the oldest still offered marks the retention edge (collect.atrisk)
                record_retention_edge(c, instrument_key, self.clock(), min(expiries))
            for d in expiries:
                w = weekly.get(d)
                c.execute(
                    "INSERT INTO expiry(underlying_id, expiry_date, is_weekly) VALUES (?, ?, ?) "
                    "ON CONFLICT(underlying_id, expiry_date) DO UPDATE SET "
                    "is_weekly = COALESCE(excluded.is_weekly, is_weekly)",
                    (uid, d.isoformat(), None if w is None else int(w)),
                )
                out[d] = c.execute(
                    "SELECT id FROM expiry WHERE underlying_id = ? AND expiry_date = ?",
                    (uid, d.isoformat()),
                ).fetchone()[0]
        return out

    def _underlying_id(self, instrument_key: str) -> int:
        uid = self._underlying_ids.get(instrument_key)
        if uid is None:
            rows = self._query(
                "SELECT id FROM underlying WHERE instrument_key = ?", (instrument_key,)
            )
            uid = rows[0][0] if rows else self.upsert_underlying(instrument_key)
            self._underlying_ids[instrument_key] = uid
        return uid

    def expiry_id(self, instrument_key: str, expiry: date) -> int | None:
        rows = self._query(
            "SELECT e.id FROM expiry e JOIN underlying u ON u.id = e.underlying_id "
            "WHERE u.instrument_key = ? AND e.expiry_date = ?",
            (instrument_key, expiry.isoformat()),
        )
        return rows[0][0] if rows else None

    def known_expiries(self, instrument_key: str) -> list[tuple[date, bool, bool | None]]:
        """``(expiry_date, contracts_fetched, is_weekly)`` stored for an underlying, ascending."""
        rows = self._query(
            "SELECT e.expiry_date, e.contracts_fetched, e.is_weekly FROM expiry e "
            "JOIN underlying u ON u.id = e.underlying_id WHERE u.instrument_key = ? "
            "ORDER BY e.expiry_date",
            (instrument_key,),
        )
        return [
            (date.fromisoformat(r[0]), bool(r[1]), None if r[2] is None else bool(r[2]))
            for r in rows
        ]

    def store_contracts(
        self,
        instrument_key: str,
        expiry: date,
        contracts: Sequence[Contract],
        *,
        openalgo: Callable[[Contract], str | None] | None = None,
        mark_fetched: bool = False,
    ) -> int:
        """Upsert contracts of one expiry (complete metadata + raw JSON) in one transaction.

        ``mark_fetched`` sets ``contracts_fetched`` in the same transaction: pass True only
        when BOTH the option and the future lists were fetched successfully. The expiry's
        ``is_weekly`` is filled from the contracts' ``weekly`` flag when the API sent one.
        Returns the number of contracts written.
        """
        uid = self._underlying_id(instrument_key)
        weekly_flags = {c.weekly for c in contracts if c.weekly is not None}
        is_weekly = None if len(weekly_flags) != 1 else int(weekly_flags.pop())
        rows = []
        for c in contracts:
            symbol = openalgo(c) if openalgo else None
            rows.append(
                (
                    c.instrument_key,
                    c.instrument_type,
                    c.strike_price,
                    c.trading_symbol,
                    c.lot_size,
                    c.tick_size,
                    c.exchange_token,
                    c.freeze_quantity,
                    c.minimum_lot,
                    None if c.weekly is None else int(c.weekly),
                    c.underlying_symbol,
                    symbol,
                    json.dumps(c.raw, separators=(",", ":"), sort_keys=True) if c.raw else None,
                )
            )
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO expiry(underlying_id, expiry_date, is_weekly) VALUES (?, ?, ?) "
                "ON CONFLICT(underlying_id, expiry_date) DO UPDATE SET "
                "is_weekly = COALESCE(excluded.is_weekly, is_weekly)",
                (uid, expiry.isoformat(), is_weekly),
            )
            eid = conn.execute(
                "SELECT id FROM expiry WHERE underlying_id = ? AND expiry_date = ?",
                (uid, expiry.isoformat()),
            ).fetchone()[0]
            conn.executemany(
                "INSERT INTO contract(expired_key, expiry_id, contract_type, strike_price, "
                "trading_symbol, lot_size, tick_size, exchange_token, freeze_quantity, "
                "minimum_lot, weekly, underlying_symbol, openalgo_symbol, raw_json) "
                f"VALUES (?, {int(eid)}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(expired_key) DO UPDATE SET contract_type = excluded.contract_type, "
                "strike_price = excluded.strike_price, trading_symbol = excluded.trading_symbol, "
                "lot_size = excluded.lot_size, tick_size = excluded.tick_size, "
                "exchange_token = excluded.exchange_token, "
                "freeze_quantity = excluded.freeze_quantity, minimum_lot = excluded.minimum_lot, "
                "weekly = excluded.weekly, underlying_symbol = excluded.underlying_symbol, "
                "openalgo_symbol = COALESCE(excluded.openalgo_symbol, openalgo_symbol), "
                "raw_json = COALESCE(excluded.raw_json, raw_json)",
                rows,
            )
            if contracts:
                first = contracts[0]
                conn.execute(
                    "UPDATE underlying SET symbol = COALESCE(symbol, ?), "
                    "underlying_type = COALESCE(underlying_type, ?), "
                    "exchange = COALESCE(exchange, ?), name = COALESCE(name, ?) WHERE id = ?",
                    (
                        first.underlying_symbol or None,
                        first.underlying_type or None,
                        first.exchange or None,
                        first.name or None,
                        uid,
                    ),
                )
            if mark_fetched:
                conn.execute("UPDATE expiry SET contracts_fetched = 1 WHERE id = ?", (eid,))
        return len(rows)

    def contracts_for(
        self, instrument_key: str, expiry: date, contract_types: Iterable[str] = ("CE", "PE", "FUT")
    ) -> list[ContractRow]:
        types = tuple(contract_types)
        marks = ",".join("?" * len(types))
        rows = self._query(
            "SELECT c.id, c.expired_key, u.instrument_key, e.expiry_date, c.contract_type, "
            "c.strike_price, c.trading_symbol, c.openalgo_symbol FROM contract c "
            "JOIN expiry e ON e.id = c.expiry_id JOIN underlying u ON u.id = e.underlying_id "
            f"WHERE u.instrument_key = ? AND e.expiry_date = ? AND c.contract_type IN ({marks}) "
            "ORDER BY c.contract_type = 'FUT' DESC, c.strike_price, c.contract_type",
            (instrument_key, expiry.isoformat(), *types),
        )
        return [
            ContractRow(r[0], r[1], r[2], date.fromisoformat(r[3]), r[4], r[5], r[6], r[7])
            for r in rows
        ]
