"""The server-rendered dashboard: Jinja2 pages and one stylesheet, no scripts."""
