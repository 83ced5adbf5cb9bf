-- Schema 4: candle prices in integer paise (store/prices.py), about 31 bytes a 1-minute candle
-- instead of 55; the documented views still show rupees, exactly the floats the API sent.
--
-- Before this script runs, store/compact.py has copied every candle into candle_v4 (and any
-- price that is not a whole number of paise into candle_exact), contract by contract in
-- committed batches, so a migration stopped half-way continues where it stopped. This script
-- is the short last step: the old table goes, the new one takes its name, views are rebuilt.

DROP VIEW historical_data;
DROP VIEW historical_data_all;
DROP VIEW job_status;
DROP VIEW contracts;
DROP TABLE candle;
ALTER TABLE candle_v4 RENAME TO candle;
DELETE FROM kv WHERE key = 'migration_004_copied_through';

-- Candles with rupee prices, for every reader (exports, verify, the documented views):
-- close = close paise / 100, open/high/low = (close paise + their difference) / 100. A candle
-- whose prices are NULL here has them, as sent, in candle_exact.
CREATE VIEW candle_rupees AS
SELECT k.contract_id, k.interval, k.ts,
       coalesce((k.close + k.open) / 100.0,
                (SELECT x.open FROM candle_exact x WHERE x.contract_id = k.contract_id
                 AND x.interval = k.interval AND x.ts = k.ts)) AS open,
       coalesce((k.close + k.high) / 100.0,
                (SELECT x.high FROM candle_exact x WHERE x.contract_id = k.contract_id
                 AND x.interval = k.interval AND x.ts = k.ts)) AS high,
       coalesce((k.close + k.low) / 100.0,
                (SELECT x.low FROM candle_exact x WHERE x.contract_id = k.contract_id
                 AND x.interval = k.interval AND x.ts = k.ts)) AS low,
       coalesce(k.close / 100.0,
                (SELECT x.close FROM candle_exact x WHERE x.contract_id = k.contract_id
                 AND x.interval = k.interval AND x.ts = k.ts)) AS close,
       k.volume, k.oi
FROM candle k;

-- 1-minute candles under the documented name; timestamps as ISO 8601 with +05:30.
-- 'oi' is the same value as open_interest (the export document queries it by that name).
CREATE VIEW historical_data AS
SELECT c.expired_key AS expired_instrument_key,
       strftime('%Y-%m-%dT%H:%M:%S+05:30', k.ts + 19800, 'unixepoch') AS timestamp,
       k.open, k.high, k.low, k.close, k.volume, k.oi AS open_interest, k.oi AS oi
FROM candle_rupees k JOIN contract c ON c.id = k.contract_id
WHERE k.interval = 1;

-- Every interval, with an interval column ('1minute' ... 'day').
CREATE VIEW historical_data_all AS
SELECT c.expired_key AS expired_instrument_key,
       CASE k.interval WHEN 1440 THEN 'day' ELSE k.interval || 'minute' END AS interval,
       strftime('%Y-%m-%dT%H:%M:%S+05:30', k.ts + 19800, 'unixepoch') AS timestamp,
       k.open, k.high, k.low, k.close, k.volume, k.oi AS open_interest, k.oi AS oi
FROM candle_rupees k JOIN contract c ON c.id = k.contract_id;

-- tick_size in rupees like every price here (the API sends it in paise: 5 = 0.05 rupees;
-- contract.tick_size keeps the API's number).
CREATE VIEW contracts AS
SELECT c.expired_key AS expired_instrument_key, u.instrument_key, e.expiry_date,
       c.contract_type, c.strike_price, c.trading_symbol, c.lot_size,
       c.tick_size / 100.0 AS tick_size,
       c.exchange_token, c.raw_json AS metadata,
       c.freeze_quantity, c.minimum_lot, c.weekly, c.underlying_symbol, c.openalgo_symbol
FROM contract c JOIN expiry e ON e.id = c.expiry_id JOIN underlying u ON u.id = e.underlying_id;

-- Jobs under the documented name: one row per job x underlying x expiry, with the real
-- instrument key and expiry date (from the job's selection: its listed expiries of each
-- underlying, or every stored expiry of it for "all expiries"). A job whose underlyings or
-- expiries are not stored yet has one row with NULLs there. A 'running' row whose process
-- died is reported as 'interrupted' by the app (Database.list_jobs) and rewritten so.
CREATE VIEW job_status AS
WITH chosen AS (
    SELECT j.id AS job_id, v.value AS instrument_key,
           json_extract(p.params, '$.expiries') AS listed
    FROM job j
    JOIN (SELECT id, CASE WHEN json_valid(params_json) THEN params_json ELSE '{}' END AS params
          FROM job) p ON p.id = j.id
    JOIN json_each(p.params, '$.underlyings') v
), item AS (
    SELECT ch.job_id, ch.instrument_key, e.expiry_date
    FROM chosen ch
    LEFT JOIN underlying u ON u.instrument_key = ch.instrument_key
    LEFT JOIN expiry e ON e.underlying_id = u.id
        AND (ch.listed IS NULL OR e.expiry_date IN (SELECT value FROM json_each(ch.listed)))
)
SELECT j.id, j.job_type, i.instrument_key, i.expiry_date,
       j.status, j.started_at, j.completed_at, j.error_message, j.retry_count,
       j.total_items, j.done_items, j.failed_items, j.requests, j.candles
FROM job j LEFT JOIN item i ON i.job_id = j.id;

-- ---- Coverage summaries (status, dashboard: milliseconds at 150,000 contracts) ----
-- Per expiry x target interval, the figures ReportStore.coverage() reports, and per expiry the
-- candles of its fetched windows (counts()). Triggers mark an expiry stale whenever anything
-- its figures depend on changes (its windows, contracts, target, contract list flag); the
-- next coverage() recomputes only stale expiries. 'stamp' changes at every mark, so a summary
-- computed while a window was being written is not stored as current.
CREATE TABLE coverage_summary (
    expiry_id          INTEGER NOT NULL,
    interval           INTEGER NOT NULL,      -- 0: no target yet (figures of 1-minute windows)
    contracts          INTEGER NOT NULL,
    complete           INTEGER NOT NULL,
    no_trades          INTEGER NOT NULL,
    failed             INTEGER NOT NULL,
    candles            INTEGER NOT NULL,
    covered            INTEGER NOT NULL,      -- 1 if any window is done
    PRIMARY KEY (expiry_id, interval)
) WITHOUT ROWID;
CREATE TABLE expiry_candles (
    expiry_id INTEGER PRIMARY KEY,
    candles   INTEGER NOT NULL
);
CREATE TABLE coverage_stale (
    expiry_id INTEGER PRIMARY KEY,
    stamp     INTEGER NOT NULL
);
INSERT INTO coverage_stale(expiry_id, stamp) SELECT id, 1 FROM expiry;

CREATE TRIGGER window_added_stale AFTER INSERT ON fetch_window BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp)
    SELECT expiry_id, 1 FROM contract WHERE id = NEW.contract_id
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER window_changed_stale AFTER UPDATE ON fetch_window BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp)
    SELECT expiry_id, 1 FROM contract WHERE id IN (NEW.contract_id, OLD.contract_id)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER window_removed_stale AFTER DELETE ON fetch_window BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp)
    SELECT expiry_id, 1 FROM contract WHERE id = OLD.contract_id
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER contract_added_stale AFTER INSERT ON contract BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (NEW.expiry_id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER contract_changed_stale AFTER UPDATE OF expiry_id, contract_type ON contract BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (NEW.expiry_id, 1), (OLD.expiry_id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER contract_removed_stale AFTER DELETE ON contract BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (OLD.expiry_id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER target_added_stale AFTER INSERT ON coverage_target BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (NEW.expiry_id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER target_changed_stale AFTER UPDATE ON coverage_target BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (NEW.expiry_id, 1), (OLD.expiry_id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER target_removed_stale AFTER DELETE ON coverage_target BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (OLD.expiry_id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER expiry_added_stale AFTER INSERT ON expiry BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (NEW.id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER expiry_changed_stale AFTER UPDATE OF contracts_fetched ON expiry BEGIN
    INSERT INTO coverage_stale(expiry_id, stamp) VALUES (NEW.id, 1)
    ON CONFLICT(expiry_id) DO UPDATE SET stamp = stamp + 1;
END;
CREATE TRIGGER expiry_removed_summary AFTER DELETE ON expiry BEGIN
    DELETE FROM coverage_summary WHERE expiry_id = OLD.id;
    DELETE FROM expiry_candles WHERE expiry_id = OLD.id;
    DELETE FROM coverage_stale WHERE expiry_id = OLD.id;
END;

-- Windows as they were when `verify` last found no error: an incremental verify checks only
-- the windows whose fetch_window row no longer matches (written again, or changed, since).
CREATE TABLE verify_mark (
    contract_id INTEGER NOT NULL,
    interval    INTEGER NOT NULL,
    from_date   TEXT NOT NULL,
    to_date     TEXT NOT NULL,
    state       TEXT NOT NULL,
    candles     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (contract_id, interval, from_date)
) WITHOUT ROWID;
