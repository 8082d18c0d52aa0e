"""The report as one self-contained HTML file: the same tables as the terminal, and the plots
embedded as base64 PNG images, so the file can be mailed or attached to a ticket."""

from __future__ import annotations

import base64
from html import escape

from gateway.report.model import Report
from gateway.report.plots import figures
from gateway.report.table import Table, headline, tables

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .25rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
.note { color: #666; font-size: .9em; margin: .2rem 0; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; } figcaption { color: #444; font-size: .9em; }
img { max-width: 100%; }
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = (
        "".join(
            "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
            for row in table.rows
        )
        or f'<tr><td colspan="{len(table.headers)}">none</td></tr>'
    )
    notes = "".join(f'<p class="note">{escape(note)}</p>' for note in table.notes)
    return (
        f"<h2>{escape(table.title)}</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{notes}"
    )


def _figure(title: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(title)}</figcaption></figure>"
    )


def render_html(report: Report) -> str:
    """The whole report as an HTML document with nothing to fetch."""
    title, *lines = headline(report)
    plots = "".join(_figure(t, png) for t, png in figures(report))
    return "".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            *(f"<p>{escape(line)}</p>" for line in lines),
            f'<div class="plots">{plots}</div>',
            *(_table(table) for table in tables(report)),
            "</body></html>\n",
        ]
    )
