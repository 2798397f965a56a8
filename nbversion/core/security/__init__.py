"""Signed mode: users' SSH keys in `.nbversion/allowed_signers`, commits and tags signed with
them, and the checks `audit verify` (and a guarded remote) make of those signatures."""
