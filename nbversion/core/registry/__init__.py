"""The model registry: GTO tags, versions, promotion behind rules, deploy hooks, serving, report."""
