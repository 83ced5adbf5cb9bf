-- Candle windows a live job is about to fetch, so that another job (in another process, or a
-- second job of the same one) waits for them instead of spending requests on them again.
-- Taken when a job plans its windows; dropped with each window's done/failed mark and when
-- the job ends. Rows of a job that is no longer running (finished, or its process died:
-- status, pid, heartbeat) are ignored and cleared by the next job that meets them.
-- The key columns come first: SQLite 3.40's integrity_check misreads a WITHOUT ROWID table
-- whose NOT NULL column is declared before a key column ("NULL value in ...").
CREATE TABLE window_claim (
    contract_id INTEGER NOT NULL REFERENCES contract(id) ON DELETE CASCADE,
    interval    INTEGER NOT NULL,
    from_date   TEXT NOT NULL,
    job_id      INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
    to_date     TEXT NOT NULL,
    PRIMARY KEY (contract_id, interval, from_date, job_id)
) WITHOUT ROWID;
CREATE INDEX window_claim_job ON window_claim(job_id);
