-- ExpiryTrack schema v1.
-- Compact storage underneath (integer ids, epoch seconds, WITHOUT ROWID clustered keys);
-- the documented names (instruments, expiries, contracts, historical_data, job_status)
-- are views on top, so SQL written against the product document works unchanged.

CREATE TABLE underlying (
    id              INTEGER PRIMARY KEY,
    instrument_key  TEXT NOT NULL UNIQUE,          -- e.g. 'NSE_INDEX|Nifty 50'
    symbol          TEXT,                          -- underlying_symbol, e.g. 'NIFTY'
    name            TEXT,
    exchange        TEXT,
    segment         TEXT,
    underlying_type TEXT,
    created_at      TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE expiry (
    id                INTEGER PRIMARY KEY,
    underlying_id     INTEGER NOT NULL REFERENCES underlying(id) ON DELETE CASCADE,
    expiry_date       TEXT NOT NULL,               -- YYYY-MM-DD
    is_weekly         INTEGER,                     -- from the API's weekly flag; NULL = unknown
    contracts_fetched INTEGER NOT NULL DEFAULT 0,  -- 1 once option AND future contracts were stored
    data_fetched      INTEGER NOT NULL DEFAULT 0,  -- 1 once every contract's target window is covered
    created_at        TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (underlying_id, expiry_date)
);

CREATE TABLE contract (
    id               INTEGER PRIMARY KEY,
    expired_key      TEXT NOT NULL UNIQUE,         -- 'NSE_FO|54452|24-04-2025'
    expiry_id        INTEGER NOT NULL REFERENCES expiry(id) ON DELETE CASCADE,
    contract_type    TEXT NOT NULL CHECK (contract_type IN ('CE', 'PE', 'FUT')),
    strike_price     REAL,
    trading_symbol   TEXT,
    lot_size         INTEGER,
    tick_size        REAL,
    exchange_token   TEXT,
    freeze_quantity  REAL,
    minimum_lot      INTEGER,
    weekly           INTEGER,
    underlying_symbol TEXT,
    openalgo_symbol  TEXT,
    raw_json         TEXT
);
CREATE INDEX contract_by_expiry ON contract(expiry_id);
CREATE INDEX expiry_by_date ON expiry(expiry_date);
CREATE INDEX contract_by_openalgo ON contract(openalgo_symbol);

-- One row per candle. interval: minutes (1, 3, 5, 15, 30; 1440 = day). ts: epoch seconds.
CREATE TABLE candle (
    contract_id INTEGER NOT NULL,
    interval    INTEGER NOT NULL,
    ts          INTEGER NOT NULL,
    open        REAL NOT NULL,
    high        REAL NOT NULL,
    low         REAL NOT NULL,
    close       REAL NOT NULL,
    volume      INTEGER NOT NULL,
    oi          INTEGER NOT NULL,
    PRIMARY KEY (contract_id, interval, ts)
) WITHOUT ROWID;

-- What was asked of the API for a contract, per date window (inclusive dates).
-- No row = not fetched. state: 'fetched' (candles stored), 'empty' (fetched, no trades),
-- 'failed' (error + attempts). A window and its candles are written in one transaction.
CREATE TABLE fetch_window (
    contract_id INTEGER NOT NULL REFERENCES contract(id) ON DELETE CASCADE,
    interval    INTEGER NOT NULL,
    from_date   TEXT NOT NULL,
    to_date     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('fetched', 'empty', 'failed')),
    candles     INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 1,
    error       TEXT,
    job_id      INTEGER,
    updated_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (contract_id, interval, from_date)
) WITHOUT ROWID;
CREATE INDEX fetch_window_failed ON fetch_window(state) WHERE state = 'failed';

-- The history window asked for per expiry and interval (widest so far; inclusive dates):
-- what "complete" means for the coverage report. Each contract's target is this range.
CREATE TABLE coverage_target (
    expiry_id   INTEGER NOT NULL REFERENCES expiry(id) ON DELETE CASCADE,
    interval    INTEGER NOT NULL,
    from_date   TEXT NOT NULL,
    to_date     TEXT NOT NULL,
    PRIMARY KEY (expiry_id, interval)
) WITHOUT ROWID;

-- Persisted jobs (collections and exports): history and failures survive restarts.
CREATE TABLE job (
    id             INTEGER PRIMARY KEY,
    job_type       TEXT NOT NULL,                  -- 'collect' | 'export'
    status         TEXT NOT NULL,                  -- pending|running|paused|completed|failed|cancelled|interrupted|needs_login
    params_json    TEXT NOT NULL DEFAULT '{}',     -- selection / export options
    underlyings    TEXT,                           -- human summary, e.g. 'NIFTY, BANKNIFTY'
    expiries       TEXT,                           -- human summary
    total_items    INTEGER NOT NULL DEFAULT 0,
    done_items     INTEGER NOT NULL DEFAULT 0,
    failed_items   INTEGER NOT NULL DEFAULT 0,
    requests       INTEGER NOT NULL DEFAULT 0,
    candles        INTEGER NOT NULL DEFAULT 0,
    error_message  TEXT,
    retry_count    INTEGER NOT NULL DEFAULT 0,
    pid            INTEGER,                        -- process running it (to spot crashed runs)
    heartbeat_at   TEXT,                           -- refreshed while running; stale = interrupted
    created_at     TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    started_at     TEXT,
    completed_at   TEXT
);

CREATE TABLE job_log (
    job_id  INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
    at      TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    level   TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX job_log_by_job ON job_log(job_id);

-- Export history (what, when, where, rows, size).
CREATE TABLE export_history (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    format      TEXT NOT NULL,
    selection   TEXT NOT NULL,                     -- JSON of the options
    path        TEXT NOT NULL,
    rows        INTEGER NOT NULL,
    bytes       INTEGER NOT NULL
);

-- Small key/value facts learned or chosen: e.g. 'span_cap_days:1minute' = '30'.
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- ---- The documented names, as views ----
CREATE VIEW instruments AS
SELECT instrument_key, symbol, name, exchange, segment, underlying_type, created_at
FROM underlying;

CREATE VIEW expiries AS
SELECT e.id, u.instrument_key, e.expiry_date, e.is_weekly, e.contracts_fetched,
       e.data_fetched, e.created_at
FROM expiry e JOIN underlying u ON u.id = e.underlying_id;

CREATE VIEW contracts AS
SELECT c.expired_key AS expired_instrument_key, u.instrument_key, e.expiry_date,
       c.contract_type, c.strike_price, c.trading_symbol, c.lot_size, c.tick_size,
       c.exchange_token, c.raw_json AS metadata,
       c.freeze_quantity, c.minimum_lot, c.weekly, c.underlying_symbol, c.openalgo_symbol
FROM contract c JOIN expiry e ON e.id = c.expiry_id JOIN underlying u ON u.id = e.underlying_id;

-- 1-minute candles under the documented name; timestamps as ISO 8601 with +05:30.
-- 'oi' is the same value as open_interest (the export document queries it by that name).
CREATE VIEW historical_data AS
SELECT c.expired_key AS expired_instrument_key,
       strftime('%Y-%m-%dT%H:%M:%S+05:30', k.ts + 19800, 'unixepoch') AS timestamp,
       k.open, k.high, k.low, k.close, k.volume, k.oi AS open_interest, k.oi AS oi
FROM candle k JOIN contract c ON c.id = k.contract_id
WHERE k.interval = 1;

-- Every interval, with an interval column ('1minute' ... 'day').
CREATE VIEW historical_data_all AS
SELECT c.expired_key AS expired_instrument_key,
       CASE k.interval WHEN 1440 THEN 'day' ELSE k.interval || 'minute' END AS interval,
       strftime('%Y-%m-%dT%H:%M:%S+05:30', k.ts + 19800, 'unixepoch') AS timestamp,
       k.open, k.high, k.low, k.close, k.volume, k.oi AS open_interest, k.oi AS oi
FROM candle k JOIN contract c ON c.id = k.contract_id;

-- Jobs under the documented name. instrument_key / expiry_date hold the job's summary
-- (a job covers several underlyings and expiries). A 'running' row whose process died is
-- reported as 'interrupted' by the app (Database.list_jobs) and rewritten so on next open.
CREATE VIEW job_status AS
SELECT j.id, j.job_type,
       j.underlyings AS instrument_key, j.expiries AS expiry_date,
       j.status, j.started_at, j.completed_at, j.error_message, j.retry_count,
       j.total_items, j.done_items, j.failed_items, j.requests, j.candles
FROM job j;
