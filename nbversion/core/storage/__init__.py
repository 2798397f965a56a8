"""Where the bytes are: links to the DVC cache, verify, gc, remotes, backup and its encryption."""
