"""The `onair` command: serve, migrate, manage users, import music."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Annotated, TextIO, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.clock import SystemClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from onair.settings import Settings

T = TypeVar("T")

cli = typer.Typer(
    help="OnAir: an open, self-hostable live radio platform.",
    no_args_is_help=True,
    add_completion=False,
)
db_cli = typer.Typer(help="The database schema.", no_args_is_help=True)
user_cli = typer.Typer(help="Accounts.", no_args_is_help=True)
catalog_cli = typer.Typer(
    help="The music catalog: import files and CSVs, make the demo.", no_args_is_help=True
)
cli.add_typer(db_cli, name="db")
cli.add_typer(user_cli, name="user")
report_cli = typer.Typer(help="Reports for the operator.", no_args_is_help=True)
cli.add_typer(catalog_cli, name="catalog")
cli.add_typer(report_cli, name="report")
node_cli = typer.Typer(help="The nodes of a cluster (ONAIR_REDIS_URL).", no_args_is_help=True)
cli.add_typer(node_cli, name="node")

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _with_db(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(settings.resolved_database_url)
        try:
            async with make_sessionmaker(engine)() as db:
                return await work(db)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _migrate(settings: Settings) -> None:
    from onair.shows.discovery.index import backfill_if_empty

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    # Shows and artists from before discovery's indexes (migration 0006) are indexed once.
    if _with_db(settings, backfill_if_empty):
        console.print("indexed the existing shows, hosts, hashtags and artists for search")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the database schema to the latest migration."""
    settings = Settings()
    _migrate(settings)
    console.print(f"database is up to date: {settings.resolved_database_url}")


@user_cli.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="3-32 letters, digits or underscores.")],
    email: Annotated[str, typer.Option(help="The account's email address.")],
    password: Annotated[
        str | None,
        typer.Option(help="The password; prompted for when omitted (or read from ONAIR_PASSWORD)."),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make an operator (admin).")] = False,
    moderator: Annotated[bool, typer.Option("--moderator", help="Make a moderator.")] = False,
) -> None:
    """Create an account, for example the first operator with --admin."""
    from onair.accounts.models import Role
    from onair.accounts.service import create_user
    from onair.errors import ApiError

    secret = password or os.environ.get("ONAIR_PASSWORD")
    if secret is None:
        if not sys.stdin.isatty():
            console.print("[red]no password: pass --password or set ONAIR_PASSWORD[/red]")
            raise typer.Exit(2)
        secret = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    role = Role.admin if admin else Role.moderator if moderator else Role.listener
    settings = Settings()
    _migrate(settings)

    async def work(db: AsyncSession) -> str:
        user = await create_user(
            db, SystemClock(), username=username, email=email, password=secret, role=role
        )
        await db.commit()
        return user.username

    try:
        name = _with_db(settings, work)
    except ApiError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"created {role.value} [bold]{name}[/bold]")


def _print_summary(imported: int, rejected: list[tuple[str, str]], what: str) -> None:
    for where, reason in rejected:
        console.print(f"[yellow]rejected[/yellow] {where}: {reason}")
    console.print(f"[green]imported {imported} {what}[/green], rejected {len(rejected)}")


def _import_files(
    settings: Settings, paths: list[Path], source: str, workers: int
) -> tuple[int, int]:
    from onair.catalog.importers import Rejected
    from onair.catalog.importers.files import find_audio_files, import_files
    from onair.catalog.service import LicenceTerms

    found = list(find_audio_files(paths))
    missing = [(r.where, r.reason) for r in found if isinstance(r, Rejected)]
    files = [p for p in found if isinstance(p, Path)]
    licence = (
        LicenceTerms(on_demand_allowed=True, label="OnAir Demo Records")
        if source == "demo"
        else LicenceTerms()
    )

    async def work(db: AsyncSession) -> tuple[int, list[tuple[str, str]]]:
        with _progress() as progress:
            task = progress.add_task("Reading audio files", total=len(files))
            summary = await import_files(
                db,
                SystemClock(),
                files,
                artwork_dir=settings.data_dir / "artwork",
                source=source,
                workers=workers,
                licence=licence,
                on_file=lambda _p: progress.advance(task),
            )
        return summary.imported, [(r.where, r.reason) for r in summary.rejected]

    imported, rejected = _with_db(settings, work)
    _print_summary(imported, missing + rejected, "tracks")
    return imported, len(missing) + len(rejected)


@catalog_cli.command("import")
def catalog_import(
    paths: Annotated[
        list[Path], typer.Argument(help="Audio files or folders (searched recursively).")
    ],
    workers: Annotated[int, typer.Option(help="Processes decoding files in parallel.")] = 2,
) -> None:
    """Import audio files (MP3, Ogg, Opus, FLAC, M4A, WAV): tags, duration and loudness."""
    settings = Settings()
    _migrate(settings)
    _import_files(settings, paths, "files", workers)


@catalog_cli.command("import-csv")
def catalog_import_csv(
    tracks_csv: Annotated[Path, typer.Argument(help="tracks.csv of a freemusi.cc-style export.")],
    releases_csv: Annotated[
        Path | None,
        typer.Option(help="releases.csv to join on `id` (default: beside tracks.csv)."),
    ] = None,
) -> None:
    """Import a metadata-only catalog from CSV (the freemusi.cc layout)."""
    from onair.catalog.importers.freemusicc import import_csv_catalog

    settings = Settings()
    _migrate(settings)
    releases = releases_csv or tracks_csv.with_name("releases.csv")

    async def work(db: AsyncSession) -> tuple[int, list[tuple[str, str]]]:
        with _progress() as progress:
            task = progress.add_task("Importing rows", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return await import_csv_catalog(
                db, SystemClock(), tracks_csv, releases, on_progress=on_progress
            )

    imported, rejected = _with_db(settings, work)
    _print_summary(imported, rejected, "tracks")


def seed_demo(settings: Settings, force: bool = False) -> None:
    """Generates the demo songs (reusing any already made) and imports them."""
    from onair.catalog.demo import generate_demo_catalog

    count = settings.demo_catalog_size
    with _progress() as progress:
        task = progress.add_task("Making the demo catalog", total=count)
        songs = generate_demo_catalog(
            settings.demo_dir,
            count,
            seed=settings.demo_seed,
            workers=os.cpu_count() or 2,
            on_song=lambda _s: progress.advance(task),
        )
    _import_files(settings, [s.path for s in songs], "demo", os.cpu_count() or 2)


def _catalog_size(settings: Settings) -> int:
    from onair.catalog.models import Track

    async def work(db: AsyncSession) -> int:
        return int(await db.scalar(select(func.count()).select_from(Track)) or 0)

    return _with_db(settings, work)


@catalog_cli.command("demo")
def catalog_demo() -> None:
    """(Re)generate the demo catalog of synthesised songs and import it."""
    settings = Settings()
    _migrate(settings)
    seed_demo(settings)


class RoyaltyFormat(enum.StrEnum):
    csv = "csv"
    soundexchange = "soundexchange"


@report_cli.command("royalties")
def report_royalties(
    first_day: Annotated[
        str, typer.Option("--from", help="First day of the period, YYYY-MM-DD (UTC).")
    ],
    last_day: Annotated[str, typer.Option("--to", help="Last day of the period, included.")],
    fmt: Annotated[
        RoyaltyFormat,
        typer.Option(
            "--format",
            help="csv, or soundexchange: the pipe-delimited report of use (NAME_OF_SERVICE|...).",
        ),
    ] = RoyaltyFormat.csv,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file (default: standard output)."),
    ] = None,
) -> None:
    """The report of use: per sound recording, its actual total performances in the period.

    A play counts in the period in which it started; skipped plays count.

    The aggregate tuning hours (listener-hours, talk included) close the summary.
    """
    from datetime import UTC, datetime

    from onair.royalties import report

    try:
        period = report.Period.of(first_day, last_day)
    except report.PeriodError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    settings = Settings()
    _migrate(settings)
    partial = output.with_name(output.name + ".part") if output else None

    async def work(db: AsyncSession) -> report.Totals:
        total = await report.count_recordings(db, period)
        with _progress() as progress:
            task = progress.add_task("Counting performances", total=total)
            with partial.open("w", encoding="utf-8", newline="") if partial else _stdout() as out:
                return await report.write_report(
                    db,
                    period,
                    fmt.value,
                    out,
                    service=settings.royalties_service_name,
                    category=settings.royalties_transmission_category,
                    now=datetime.now(UTC),
                    on_row=lambda _r: progress.advance(task),
                )

    try:
        totals = _with_db(settings, work)
    except BaseException:
        if partial is not None:
            partial.unlink(missing_ok=True)
        raise
    if partial is not None and output is not None:
        partial.replace(output)
    console.print(
        f"[green]{totals.recordings} recordings[/green], {totals.plays} plays, "
        f"{totals.performances} performances; aggregate tuning hours "
        f"{totals.aggregate_tuning_hours:.3f} ({period.first_day} to {period.last_day}, UTC)",
        soft_wrap=True,
    )
    if output is not None:
        console.print(f"written to {output}", soft_wrap=True, highlight=False)


@contextlib.contextmanager
def _stdout() -> Iterator[TextIO]:
    """Standard output for a `with`, left open."""
    yield sys.stdout
    sys.stdout.flush()


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default ONAIR_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ONAIR_PORT).")] = None,
    demo: Annotated[
        bool, typer.Option(help="Make the demo catalog if the catalog is empty.")
    ] = True,
) -> None:
    """Migrate the database, make the demo catalog on first run, and serve OnAir."""
    import uvicorn

    from onair.app import create_asgi

    settings = Settings()
    _migrate(settings)
    if demo and _catalog_size(settings) == 0:
        seed_demo(settings)
    bind_host = host or settings.host
    bind_port = port or settings.port
    settings = settings.model_copy(update={"host": bind_host})  # the source ingest binds it too
    console.print(f"OnAir is on air at [bold]http://{bind_host}:{bind_port}[/bold]")
    if settings.source_port:
        console.print(f"DJ software broadcasts to {bind_host}:{settings.source_port} (Icecast)")
    uvicorn.run(
        create_asgi(settings),
        host=bind_host,
        port=bind_port,
        proxy_headers=True,
        # Listeners' streams never end; without a bound, shutdown would wait for every one.
        timeout_graceful_shutdown=3,
        # Room events go out as frames built once for everyone (onair/rooms/wire.py), so
        # compression would only shrink welcomes, at about 38 KiB of memory per connection.
        ws_per_message_deflate=False,
    )


async def _nodes(change: Callable[..., Awaitable[None]] | None = None, *args: object) -> None:
    from redis.asyncio import Redis

    from onair.cluster.node import Keys, list_nodes

    settings = Settings()
    if not settings.redis_url:
        console.print("[red]No cluster: ONAIR_REDIS_URL is not set.[/red]")
        raise typer.Exit(1)
    redis = Redis.from_url(settings.redis_url)
    keys = Keys(settings.redis_prefix)
    try:
        if change is not None:
            await change(redis, keys, *args)
        for node in await list_nodes(redis, keys):
            state = "draining" if node.draining else "open"
            print(
                f"{node.node_id}\t{node.url}\t{state}\tstudios={node.studios}"
                f"\tlisteners={node.listeners}\tcpu={node.cpu:.2f}"
            )
    finally:
        await redis.aclose()


@node_cli.command("list")
def node_list() -> None:
    """The nodes whose heartbeat is fresh, with their load."""
    asyncio.run(_nodes())


@node_cli.command("drain")
def node_drain(node_id: Annotated[str, typer.Argument(help="The node (ONAIR_NODE_ID).")]) -> None:
    """No new studios on the node; its live shows move to other nodes at a song's end."""
    from onair.cluster.node import set_draining

    asyncio.run(_nodes(set_draining, node_id, True))


@node_cli.command("undrain")
def node_undrain(
    node_id: Annotated[str, typer.Argument(help="The node (ONAIR_NODE_ID).")],
) -> None:
    """The node takes new studios again."""
    from onair.cluster.node import set_draining

    asyncio.run(_nodes(set_draining, node_id, False))


def main() -> None:
    cli()
