"""Training targets: run `train --on NAME` on a GPU box (ssh://), later a Slurm or Ray cluster.

`urls` parses the three kinds of target URL, `settings` keeps them in `.nbversion/config.toml`,
`ssh` talks to a host, `launch` sends a run there, `follow` watches it and commits its outcome
in the notebook's workspace, `host` is what runs on the target itself (`nbversion target exec`).
"""
