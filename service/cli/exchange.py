"""`counterfeit exchange pull|status`: take peers' signed feeds (run pull from cron; it resumes from its cursors)."""

from __future__ import annotations

import json
from typing import Optional

import typer

from service.cli.common import PANELS, _fail, _sessions, _settings, app, err

exchange = typer.Typer(
    help="Peers' signed exchange feeds: known-fake hashes and keyed seller identifiers.", no_args_is_help=True
)
app.add_typer(exchange, name="exchange", rich_help_panel=PANELS.EXCHANGE)


@exchange.command("pull")
def pull(issuer: Optional[str] = typer.Option(None, help="Only this peer (default: every enabled one).")):
    """Pull every enabled peer's feed from its cursor; exit 1 if a peer's page was refused or unreachable."""
    from service.exchange.feed_pull import FeedPuller

    settings = _settings()
    if issuer is not None and issuer not in settings.exchange_peers:
        raise _fail(f"{issuer!r} is not in COUNTERFEIT_EXCHANGE_PEERS")
    if not settings.exchange_peers:
        raise _fail("No peers: set COUNTERFEIT_EXCHANGE_PEERS.")
    puller = FeedPuller(
        _sessions(),
        settings.exchange_peers,
        settings.trusted_signal_issuers,
        settings.exchange_max_page_age_seconds,
    )

    def progress(report) -> None:
        err.print(
            f"{report.issuer}: page {report.pages}, cursor {report.cursor}, applied {report.applied}, "
            f"withdrawn {report.withdrawn}, skipped {report.skipped}",
            markup=False,
            highlight=False,
        )

    reports = [puller.pull(issuer, progress)] if issuer else puller.pull_all(progress)
    for report in reports:
        for problem in report.problems:
            err.print(f"{report.issuer}: skipped {problem}", style="yellow", markup=False, highlight=False)
        outcome = f"refused: {report.error}" if report.error else "ok"
        typer.echo(
            f"{report.issuer}\tcursor={report.cursor}\tpages={report.pages}\tapplied={report.applied}\t"
            f"withdrawn={report.withdrawn}\tignored={report.ignored}\tskipped={report.skipped}\t{outcome}"
        )
    if any(report.error for report in reports):
        raise typer.Exit(1)


@exchange.command("status")
def status():
    """Each peer's cursor, last pull, skipped entries and last error."""
    from sqlalchemy import select

    from service.db.models import ExchangeCursor

    with _sessions()() as session:
        rows = {row.issuer: row for row in session.scalars(select(ExchangeCursor))}
    for issuer, peer in sorted(_settings().exchange_peers.items()):
        row = rows.get(issuer)
        typer.echo(
            f"{issuer}\t{'enabled' if peer.enabled else 'disabled'}\tcursor={row.cursor if row else 0}\t"
            f"pulled_at={row.pulled_at if row and row.pulled_at else '-'}\t"
            f"skipped={row.skipped_entries if row else 0}\tlast_error={(row.last_error if row else None) or '-'}"
        )


@exchange.command("push")
def push(
    hub_url: str = typer.Option(..., help="The hub's base URL"),
    api_key: str = typer.Option(..., envvar="COUNTERFEIT_HUB_API_KEY", help="This platform's hub key"),
):
    """Publish this platform's signed feed to a hub, from the hub's cursor for it to the end."""
    import httpx

    from service.exchange.feed import FeedPublisher

    settings = _settings()
    publisher = FeedPublisher(
        sessions=_sessions(),
        issuer=settings.signal_issuer,
        private_key=settings.signal_private_key,
        seller_ttl_days=settings.exchange_seller_ttl_days,
        page_size=settings.exchange_page_size,
    )
    with httpx.Client(base_url=hub_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60) as client:
        cursor = client.get("/v1/hub/cursor")
        if cursor.status_code != 200:
            raise _fail(f"the hub answered HTTP {cursor.status_code}: {cursor.text[:300]}", code=1)
        since = cursor.json()["cursor"]
        while True:
            page = publisher.page(since)
            answer = client.post("/v1/hub/pages", json=page)
            if answer.status_code != 200:
                raise _fail(f"the hub refused the page after {since}: {answer.text[:300]}", code=1)
            typer.echo(f"published after {since}: {json.dumps(answer.json())}")
            since = page["next_cursor"]
            if not page["has_more"]:
                break
