/* The floor under any SQLite reader: the system SQLite stepping the export's query and
 * taking each of the 7 stored candle columns with sqlite3_column_int64, no driver, no Arrow.
 * Compare with bench/bench_export_floor.py's "read 7 stored columns" (the ADBC driver).
 *
 *   gcc -O2 bench/sqlite_read_floor.c -lsqlite3 -o /tmp/sqlite_read_floor
 *   /tmp/sqlite_read_floor bench/out/export_bench_v4.sqlite3
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define COLS 7
#define ROWS 200000

int main(int argc, char **argv) {
    sqlite3 *db;
    if (argc < 2 || sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "usage: %s DATABASE\n", argv[0]);
        return 2;
    }
    long long *values = malloc(sizeof(long long) * COLS * ROWS);
    long rows = 0;
    char sql[4096];
    clock_t start = clock();
    for (int lo = 0; lo < 4000; lo += 64) {
        int n = snprintf(sql, sizeof sql,
                         "SELECT ts, close, open, high, low, volume, oi FROM candle "
                         "WHERE contract_id IN (");
        for (int id = lo; id < lo + 64; id++)
            n += snprintf(sql + n, sizeof sql - n, "%s%d", id == lo ? "" : ",", id);
        snprintf(sql + n, sizeof sql - n, ") AND interval = 1 ORDER BY contract_id, ts");
        sqlite3_stmt *stmt;
        if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
            fprintf(stderr, "%s\n", sqlite3_errmsg(db));
            return 1;
        }
        long k = 0;
        while (sqlite3_step(stmt) == SQLITE_ROW) {
            for (int c = 0; c < COLS; c++)
                values[c * ROWS + k] = sqlite3_column_int64(stmt, c);
            k = (k + 1) % ROWS;
            rows++;
        }
        sqlite3_finalize(stmt);
    }
    printf("%ld rows, 7 columns: %.2f s of CPU\n", rows,
           (double)(clock() - start) / CLOCKS_PER_SEC);
    free(values);
    sqlite3_close(db);
    return 0;
}
