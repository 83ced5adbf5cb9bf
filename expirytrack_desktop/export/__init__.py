"""Export engine: OpenAlgo symbols and streaming CSV / JSON / ZIP / Parquet writers (no Qt)."""
