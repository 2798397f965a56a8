"""The audit log `.nbversion/audit.jsonl`: the hash chain, queries, and `audit verify`."""
