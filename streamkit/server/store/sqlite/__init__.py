"""The embedded SQLite engine: one file, WAL, one writer thread with group commit.

`store.SqliteStore` is the engine; the other modules are its parts (schema,
rows, reads, writes, the writer thread, the dedupe window, checkpoints).
"""
