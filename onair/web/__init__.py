"""Pages (Jinja2 templates) and static ES modules; no build step."""
