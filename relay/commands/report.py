"""`relay report`: how the programme is going, as a summary, JSON, CSV files or a page.

Thin: the figures come from relay.reports.build, the renderings from
relay.reports.text, .files and .page, all imported inside the command
(SQLAlchemy, jinja2 and matplotlib stay unloaded for `relay --help`).
"""

from __future__ import annotations

from pathlib import Path

import click

from relay.commands.context import Context, pass_context, table


@click.command("report")
@click.option("--cohort", default=None, help="Only this cohort's pairs.")
@click.option("--since", default=None, help="Start of the period, YYYY-MM-DD (00:00 UTC).")
@click.option(
    "--until",
    default=None,
    help="End of the period, YYYY-MM-DD (to the end of that day, UTC); the report is as of "
    "then. Default: now.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as one JSON object.")
@click.option(
    "--csv",
    "csv_folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write pairs.csv, cohorts.csv and moderation.csv into this folder.",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one self-contained HTML page with charts to this file.",
)
@click.option(
    "--with-addresses",
    is_flag=True,
    help="Include participants' real addresses (default: display names only).",
)
@pass_context
def report_command(
    context: Context,
    cohort: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    csv_folder: Path | None,
    html_file: Path | None,
    with_addresses: bool,
) -> None:
    """How the programme is going and who needs a coordinator (docs/reports.md)."""
    from relay.reports.parallel import SecondProcess
    from relay.reports.period import period_from
    from relay.store.states import utcnow

    period = period_from(since, until, cohort, utcnow())
    # Started before this process's own imports, so both interpreters start up at once.
    with SecondProcess.start() as second:
        from relay.reports import files, text
        from relay.reports.build import build_report

        if html_file is not None:
            from relay.reports.page import render_page
        report = build_report(
            context.store,
            context.config,
            period,
            with_addresses,
            with_series=html_file is not None,
            second=second,
        )
    written = []
    if csv_folder is not None:
        written += files.write_csv_folder(csv_folder, report)
    if html_file is not None:
        page = render_page(report, context.config.relay.programme_name)
        html_file.write_text(page, encoding="utf-8")
        written.append(html_file)
    if as_json:
        click.echo(files.to_json(report))
    else:
        for line in text.summary_lines(report, table):
            click.echo(line)
    for path in written:
        click.echo(f"wrote {path}", err=as_json)
