"""Notebook presentation of core results that is more than a table: thumbnails, charts.

Registered by result class in nbversion/render.py (EXTRA_HTML) and imported only when a
notebook draws one; they import core, core never imports them.
"""
