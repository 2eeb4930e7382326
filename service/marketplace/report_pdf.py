"""A transparency report as a PDF to send: its figures as tables and its weekly trends as charts.

fpdf2 lays out the pages; matplotlib draws the charts (as PNG at 150 dpi, embedded). Text is the core
Helvetica font, so anything outside Latin-1 is replaced (brand and platform names are ASCII here).
"""

from __future__ import annotations

import io
from typing import Any

from service.marketplace.reports import report_rows


def report_chart(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    from matplotlib.figure import Figure

    weeks = [row["week"] for row in report["weekly"]]
    figure = Figure(figsize=(7.5, 5.2), dpi=150)
    checks, complaints = figure.subplots(2, 1, sharex=True)
    positions = range(len(weeks))
    checks.bar([p - 0.2 for p in positions], [r["checks"] for r in report["weekly"]], 0.4, label="checks")
    checks.bar([p + 0.2 for p in positions], [r["flagged"] for r in report["weekly"]], 0.4, label="flagged")
    checks.set_title("Checks per week")
    checks.legend(loc="upper left")
    complaints.plot(positions, [r["complaints_filed"] for r in report["weekly"]], marker="o", label="filed")
    complaints.plot(positions, [r["complaints_upheld"] for r in report["weekly"]], marker="s", label="upheld")
    complaints.set_title("Complaints per week")
    complaints.legend(loc="upper left")
    complaints.set_xticks(list(positions), weeks, rotation=45, ha="right", fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _text(value: Any) -> str:
    return str("" if value is None else value).encode("latin-1", "replace").decode("latin-1")


def report_pdf(report: dict[str, Any]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(f"Transparency report: {report['brand']} on {report['platform'] or 'all platforms'}")
    pdf.set_creator("counterfeit-check")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _text(f"Transparency report: {report['brand']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    period = report["period"]
    pdf.cell(
        0,
        6,
        _text(
            f"Platform {report['platform'] or 'all platforms'}, {period['start']} to {period['end']} (UTC)"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.cell(0, 6, _text(f"Generated {report['generated_at']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    with pdf.table(col_widths=(35, 60, 30), text_align=("LEFT", "LEFT", "RIGHT")) as table:
        table.row(["Section", "Metric", "Value"])
        for section, metric, value in report_rows(report):
            table.row([_text(section.replace("_", " ")), _text(metric.replace("_", " ")), _text(value)])
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, "Weekly trends", new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(report_chart(report)), w=pdf.epw)
    pdf.set_font("Helvetica", size=9)
    with pdf.table(text_align="RIGHT") as table:
        table.row(["week", "checks", "flagged", "complaints filed", "complaints upheld"])
        for row in report["weekly"]:
            table.row(
                [
                    row["week"],
                    *(_text(row[k]) for k in ("checks", "flagged", "complaints_filed", "complaints_upheld")),
                ]
            )
    return bytes(pdf.output())
