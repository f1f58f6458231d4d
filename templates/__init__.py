"""Notice templates shipped with the relay (jinja2, *.txt.j2)."""
