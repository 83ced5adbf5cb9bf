"""Export engine: OpenAlgo symbols and streaming CSV / JSON / ZIP / Parquet writers (no Qt).

Import the public surface from :mod:`.api`. Modules: ``symbols`` (OpenAlgo names),
``options`` (ExportOptions, file names), ``query`` (selection, counts, wizard lists),
``candles`` (chunked reading and text formatting), ``csv_format`` / ``json_format`` /
``zip_format`` / ``parquet_format`` (writers), ``atomic`` (write-then-rename), ``runner``
(run_export), ``history`` (export_history), ``errors``, ``progress``.
"""
