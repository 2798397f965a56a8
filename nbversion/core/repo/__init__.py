"""The workspace itself: init, settings, identity and users, status, commit, checkout, history, branches."""
