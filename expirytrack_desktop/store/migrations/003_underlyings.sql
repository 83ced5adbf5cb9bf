-- The F&O universe from Upstox's instrument master: every index and stock underlying seen in
-- NSE_FO/BSE_FO, kept after it leaves F&O (its expired contracts stay collectable by key for
-- months). "In F&O now" = last_seen equals kv 'universe_master_date' (the cached master's day).
CREATE TABLE fo_underlying (
    instrument_key  TEXT PRIMARY KEY,               -- 'NSE_EQ|INE002A01018', 'NSE_INDEX|Nifty 50'
    symbol          TEXT NOT NULL,                  -- trading symbol, e.g. 'RELIANCE', 'M&M'
    name            TEXT NOT NULL,                  -- company or index name
    underlying_type TEXT NOT NULL CHECK (underlying_type IN ('INDEX', 'EQUITY')),
    fo_segment      TEXT NOT NULL CHECK (fo_segment IN ('NSE_FO', 'BSE_FO')),
    lot_size        INTEGER NOT NULL,
    first_seen      TEXT NOT NULL,                  -- YYYY-MM-DD (master day)
    last_seen       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX fo_underlying_by_symbol ON fo_underlying(symbol COLLATE NOCASE);
