"""Adapters and low-level parts: `_git` and `_dvc` (the only git / DVC importers), pointers, stat cache, hashing, atomic writes, the lock."""
