"""Coordinator reports: `relay report` (docs/reports.md).

Owns the report's figures and their renderings. The figures are computed in
SQL (GROUP BY and window functions; no message row is loaded into Python),
one module per table: pairs.py, cohorts.py, moderation.py. Shared pieces:
period.py (what the options mean), selection.py (which pairs), replies.py
(reply times) and held.py (held mail), each computed once into a temporary
table, prompts.py, series.py (the charts' data) and sql.py (what SQLite and
PostgreSQL spell differently); build.py puts them together. Rendering is
separate: text.py (the summary), files.py (JSON and CSV), charts.py
(matplotlib, inline SVG) and page.py (the HTML page).
"""
