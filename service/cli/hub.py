"""`counterfeit hub …`: run the neutral exchange hub (service/exchange/hub/) and manage its members."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from service.cli.common import PANELS, _fail, app, err

hub = typer.Typer(
    help="A neutral third-party exchange hub: members publish, subscribers read one merged feed.",
    no_args_is_help=True,
)
members = typer.Typer(
    help="The hub's members: their keys, what they may publish, revocation, statistics.", no_args_is_help=True
)
app.add_typer(hub, name="hub", rich_help_panel=PANELS.EXCHANGE)
hub.add_typer(members, name="members")


def _hub():
    from service.exchange.hub.runtime import HubSettings, open_hub

    return open_hub(HubSettings())


@hub.command("serve")
def serve(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8100)):
    """Serve the hub's API (COUNTERFEIT_HUB_* settings; COUNTERFEIT_HUB_PRIVATE_KEY signs its feed)."""
    import uvicorn

    from service.api.hub import create_hub_app

    the_hub = _hub()
    if not the_hub.settings.private_key:
        raise _fail("Set COUNTERFEIT_HUB_PRIVATE_KEY (counterfeit signals keygen) to sign the hub's feed.")
    uvicorn.run(create_hub_app(the_hub), host=host, port=port, log_level="warning")


@members.command("add")
def add(
    name: str = typer.Argument(..., help="The member's issuer name (as its feed pages name it)"),
    public_key: str = typer.Option(..., help="The member's Ed25519 public key (base64)"),
    types: List[str] = typer.Option(["pdq", "seller"], "--type", help="Entry types it may publish"),
    brands: List[str] = typer.Option(["*"], "--brand", help="Brands it may publish about (* for any)"),
    anonymous: bool = typer.Option(False, help="Subscribers see only a count of its reports, not its name"),
    feed_url: Optional[str] = typer.Option(None, help="Its feed, for `hub pull` (else it pushes)"),
    feed_api_key: Optional[str] = typer.Option(None, help="The exchange key it gave the hub for its feed"),
):
    """Register a member; prints its hub API key (once)."""
    token = _hub().members.add(name, public_key, types, brands, anonymous, feed_url, feed_api_key)
    typer.echo(token)


@members.command("revoke")
def revoke(name: str):
    """Refuse the member's pages and withdraw everything it reported (subscribers see the withdrawals)."""
    the_hub = _hub()
    gone = the_hub.members.revoke(name)
    appended = the_hub.merged.refresh()
    err.print(f"{name} revoked: {gone} report(s) withdrawn, {appended} feed entr(ies) appended", markup=False)


@members.command("list")
def list_members():
    """Every member's statistics as JSON: published, matched by others, refused, cursor."""
    typer.echo(json.dumps(_hub().members.stats(), indent=2))


@hub.command("pull")
def pull(
    name: Optional[str] = typer.Option(None, help="Only this member (default: every member with a feed URL)"),
):
    """Pull members' feeds (those registered with --feed-url); exit 1 if a page was refused."""
    from service.exchange.feed_pull import PageRefused

    the_hub = _hub()
    names = [name] if name else [s["member"] for s in the_hub.members.stats() if not s["revoked_at"]]
    failed = False
    for member in names:
        try:
            intake = the_hub.intake.pull(member)
            typer.echo(f"{member}\t{json.dumps(intake.as_dict())}")
        except PageRefused as exc:
            if name or "no feed URL" not in str(exc):
                failed = True
                err.print(f"{member}: refused: {exc}", style="red", markup=False)
    if failed:
        raise typer.Exit(1)
