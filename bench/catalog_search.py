"""Catalog search latency at the freemusi.cc size and at a million tracks.

Builds (once; cached under bench/out/) a SQLite catalog holding the freemusi.cc export, the demo
catalog when `onair.catalog.demo` is there, and a generated catalog of synthetic but realistic
tracks: albums of 8-14 tracks by one artist, titles and names drawn from a Zipf-distributed
vocabulary of real and real-looking words, some of them accented. The generated rows are bulk
inserted straight into the tables, and the index is built with `search.rebuild_index`.

Then it times `search.search_track_ids` (as the app calls it, through aiosqlite) for queries made
from random tracks: one word, two words, two words with the second still being typed, and two
words with one typo, and prints p50/p95/p99 for each.

    .venv/bin/python bench/catalog_search.py                 # 1,000,000 generated tracks
    .venv/bin/python bench/catalog_search.py --tracks 100000 --queries 500
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from onair.catalog import search  # noqa: E402
from onair.catalog.importers import import_rows  # noqa: E402
from onair.catalog.importers.freemusicc import import_freemusicc  # noqa: E402
from onair.catalog.service import LicenceTerms, TrackInput  # noqa: E402
from onair.clock import SystemClock  # noqa: E402
from onair.db.base import make_engine, make_sessionmaker  # noqa: E402
from onair.db.migrate import upgrade  # noqa: E402

OUT = ROOT / "bench" / "out"
# Bump when the generator or the schema changes, so cached catalogs are rebuilt.
BUILD_VERSION = 6

console = Console(stderr=True)


def split_words(text: str) -> list[str]:
    return text.split()


# Real words first, roughly in the order song titles use them: Zipf gives them the head.
COMMON_WORDS = split_words("""
the you love my me of in night i a heart to your and baby on time dance all we be life
light blue fire girl world way day home feel dream down like one no go away with it is
rain sun summer song back never forever boy street city moon star gold black wild sweet
lost run tonight stay free young good high rock soul blood sky heaven alone again little
lady hey let man remember only eyes stop party sea river ghost wind road last kiss crazy
broken money body fly shadow midnight morning electric paradise angel devil golden silver
dark cold hot fall rise waiting burning dancing falling running flying tears smile stars
storm thunder ocean island desert garden forest mountain train highway window mirror
queen king prince velvet neon echo fever honey sugar candy cherry diamond crystal
""")
ACCENTED_WORDS = split_words("""
corazón café amor noche mañana señor niña canción música déjà été rêve über schön garçon
coração saudade fiancée naïve résumé élan mémoire lumière étoile fuego año pájaro sueño
mädchen müde straße grüße håp själ kärlek søvn ø zürich méditerranée cœur ça là
""")
FIRST_NAMES = split_words("""
John Maria David Anna James Sarah Michael Laura Daniel Emma Lucas Sofia Leo Mia Max Nina
Oscar Julia Hugo Clara Felix Alice Adam Eva Noah Lena Elias Ida Theo Ella Jonas Sara Liam
Zoe Paul Rosa Ivan Olga Marco Giulia Pablo Lucia Diego Elena Tomas Ana Luca Chiara Omar
Yara Kenji Aiko Ravi Priya Chen Mei Kwame Amara Sven Freya Lars Ingrid Jan Petra Piotr Zofia
José Zoë Björn Łukasz Søren Chloé André Renée Jürgen Ángel Inés Joël Maëlle Çağan Dvořák
""")
GENRES = split_words("""
Electronic Pop Rock Hip-Hop Jazz Classical Ambient Techno House Folk Indie Soul Funk Reggae
Metal Punk Blues Country Latin World Trance Dubstep Drum&Bass Disco R&B Gospel Chiptune
Soundtrack Lo-fi Synthwave Trip-Hop IDM Bossa-Nova Flamenco Chanson Afrobeat Cumbia Grime
""")
SYLLABLES = split_words("""
ka lo mi ra ven ta sol dor mar el an is ber lin gar tor vel mon san ri ko na de la ro fi
sta pre tre gri bla dri fle kro zu xi qua nor sel tam hal ver bro cha she wi yu ze mo pa
""")
ACCENTS = {"a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü", "n": "ñ", "c": "ç"}


@dataclass(frozen=True)
class Zipf:
    """Draws items with probability proportional to 1 / (rank + 2.7), like word frequencies."""

    items: Sequence[str]
    cumulative: Sequence[float]

    @classmethod
    def of(cls, items: Sequence[str], exponent: float = 1.0) -> Zipf:
        weights = [1.0 / (rank + 2.7) ** exponent for rank in range(len(items))]
        return cls(items, list(itertools.accumulate(weights)))

    def draw(self, rng: random.Random, k: int = 1) -> list[str]:
        return rng.choices(self.items, cum_weights=self.cumulative, k=k)


def pseudo_words(rng: random.Random, count: int) -> list[str]:
    """Pronounceable made-up words ("velmon", "krozu"), a few with an accent, none repeated."""
    seen = {*COMMON_WORDS, *ACCENTED_WORDS}
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choices(SYLLABLES, k=rng.choice((1, 2, 2, 2, 3, 3))))
        if rng.random() < 0.3:
            word += rng.choice("nrstl")
        if rng.random() < 0.08:
            i = rng.randrange(len(word))
            word = word[:i] + ACCENTS.get(word[i], word[i]) + word[i + 1 :]
        if len(word) > 2 and word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass(frozen=True)
class Vocabulary:
    words: Zipf
    surnames: Zipf
    first_names: Zipf
    genres: Zipf

    @classmethod
    def make(cls, rng: random.Random, size: int) -> Vocabulary:
        made = pseudo_words(rng, size)
        # Accented real words are spread through the upper ranks, as loanwords would be.
        head: list[str] = list(COMMON_WORDS)
        for word in ACCENTED_WORDS:
            head.insert(rng.randrange(40, len(head) + 1), word)
        return cls(
            words=Zipf.of(head + made[: size // 2]),
            surnames=Zipf.of([w.capitalize() for w in made[size // 2 :]], 0.7),
            first_names=Zipf.of(FIRST_NAMES, 0.5),
            genres=Zipf.of(GENRES),
        )

    def title(self, rng: random.Random) -> str:
        words = self.words.draw(rng, rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5)))
        return " ".join(w.capitalize() for w in words)

    def artist(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.55:
            return f"{self.first_names.draw(rng)[0]} {self.surnames.draw(rng)[0]}"
        if roll < 0.8:
            return "The " + " ".join(w.capitalize() for w in self.words.draw(rng, 2))
        if roll < 0.9:
            return f"DJ {self.surnames.draw(rng)[0]}"
        return self.surnames.draw(rng)[0]


# --- building ---------------------------------------------------------------------------------


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def shared_data() -> Path:
    override = os.environ.get("ONAIR_SHARED_DATA")
    return Path(override) if override else ROOT.parent / "shared" / "data"


def url_of(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".json"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def cached(path: Path, params: dict[str, object]) -> bool:
    """`path` was built with `params`; a database built before later migrations were written
    is brought up to them (`follows_migrations`) rather than rebuilt."""
    meta = Path(f"{path}.json")
    if not (path.exists() and meta.exists()):
        return False
    built = json.loads(meta.read_text())
    if not follows_migrations(built, params):
        return False
    if built != params:
        upgrade(url_of(path))
        mark_built(path, params)
    return True


def follows_migrations(built: dict[str, object], params: dict[str, object]) -> bool:
    """The database built with `built` has the schema of `params`, or will have once the
    migrations written since are run: every other parameter is the same, and every migration
    it was built with is unchanged (one edited in place means a rebuild)."""
    others = {k: v for k, v in built.items() if k != "schema"}
    wanted = {k: v for k, v in params.items() if k != "schema"}
    had, has = built.get("schema"), params.get("schema")
    if others != wanted or not isinstance(had, dict) or not isinstance(has, dict):
        return False
    return all(has.get(name) == digest for name, digest in had.items())


def mark_built(path: Path, params: dict[str, object]) -> None:
    Path(f"{path}.json").write_text(json.dumps(params))


async def import_real_catalogs(path: Path, demo: bool) -> None:
    """freemusi.cc and the demo songs, through the importers as `onair catalog` would."""
    engine = make_engine(url_of(path))
    sessions = make_sessionmaker(engine)
    try:
        folder = shared_data() / "catalog" / "freemusicc"
        if (folder / "tracks.csv").exists():
            with progress() as bar:
                task = bar.add_task("Importing freemusi.cc", total=None)
                async with sessions() as db:
                    summary = await import_freemusicc(
                        db,
                        SystemClock(),
                        folder / "tracks.csv",
                        on_progress=lambda done, total: bar.update(
                            task, completed=done, total=total
                        ),
                    )
            console.print(
                f"freemusi.cc: {summary.imported} imported, {len(summary.rejected)} rejected"
            )
        else:
            console.print(f"[yellow]no freemusi.cc export at {folder}; skipping it[/yellow]")
        if demo:
            await import_demo(sessions)
    finally:
        await engine.dispose()


async def import_demo(sessions: async_sessionmaker[AsyncSession]) -> None:
    try:
        from onair.catalog.demo import generate_demo_catalog
    except ImportError:
        console.print(
            "[yellow]onair.catalog.demo is not there yet; skipping the demo songs[/yellow]"
        )
        return
    with progress() as bar:
        task = bar.add_task("Making the demo songs", total=40)
        songs = generate_demo_catalog(
            OUT / "demo", 40, workers=os.cpu_count() or 2, on_song=lambda _s: bar.advance(task)
        )
    items = [
        TrackInput(
            source="demo",
            source_key=f"demo:{song.path.name}",
            title=song.title,
            artists=tuple(song.artists),
            album=song.album,
            genres=tuple(song.genres),
            year=song.year,
            track_number=song.track_number,
            duration_s=song.duration_s,
            isrc=song.isrc,
            explicit=song.explicit,
            audio_path=str(song.path),
            licence=LicenceTerms(on_demand_allowed=True, label="OnAir Demo Records"),
        )
        for song in songs
    ]
    async with sessions() as db:
        await import_rows(db, SystemClock(), items)
    console.print(f"demo: {len(items)} songs")


def generate(path: Path, tracks: int, seed: int, vocabulary_size: int) -> None:
    """Appends `tracks` generated tracks with plain sqlite3 bulk inserts (no ORM)."""
    rng = random.Random(seed)
    vocab = Vocabulary.make(rng, vocabulary_size)
    db = sqlite3.connect(path)
    # A throwaway build: durability would only slow it down.
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -200000")
    next_id = {
        table: (db.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]) + 1
        for table in ("tracks", "artists", "albums", "genres", "licences")
    }
    genre_ids = dict(db.execute("SELECT slug, id FROM genres"))
    for name in GENRES:
        slug = name.lower()
        if slug not in genre_ids:
            genre_ids[slug] = next_id["genres"]
            db.execute(
                "INSERT INTO genres (id, name, slug) VALUES (?, ?, ?)",
                (next_id["genres"], name, slug),
            )
            next_id["genres"] += 1
    artist_ids = dict(db.execute("SELECT name, id FROM artists"))
    created = "2026-01-01 12:00:00.000000"
    with progress() as bar:
        task = bar.add_task(f"Generating {tracks:,} tracks", total=tracks)
        made = 0
        while made < tracks:
            rows: dict[str, list[tuple[object, ...]]] = {
                k: []
                for k in (
                    "artists",
                    "albums",
                    "tracks",
                    "track_artists",
                    "track_genres",
                    "licences",
                )
            }
            while made < tracks and len(rows["tracks"]) < 20000:
                artist = vocab.artist(rng)
                if artist not in artist_ids:
                    artist_ids[artist] = next_id["artists"]
                    rows["artists"].append((next_id["artists"], artist))
                    next_id["artists"] += 1
                album_id = next_id["albums"]
                next_id["albums"] += 1
                year = rng.randint(1960, 2025)
                label = f"{vocab.surnames.draw(rng)[0]} Records"
                count = min(rng.randint(8, 14), tracks - made)
                titles = [vocab.title(rng) for _ in range(count)]
                album = titles[0] if rng.random() < 0.35 else vocab.title(rng)
                rows["albums"].append((album_id, album, artist, year, label, f"bench:{album_id}"))
                genre = genre_ids[vocab.genres.draw(rng)[0].lower()]
                for number, title in enumerate(titles, 1):
                    track_id = next_id["tracks"]
                    next_id["tracks"] += 1
                    rows["tracks"].append(
                        (
                            track_id,
                            title,
                            album_id,
                            number,
                            year,
                            rng.randint(90, 480),
                            "bench",
                            f"bench:{track_id}",
                            created,
                        )
                    )
                    rows["track_artists"].append((track_id, artist_ids[artist], 0))
                    if rng.random() < 0.08:
                        guest = vocab.artist(rng)
                        if guest not in artist_ids:
                            artist_ids[guest] = next_id["artists"]
                            rows["artists"].append((next_id["artists"], guest))
                            next_id["artists"] += 1
                        if artist_ids[guest] != artist_ids[artist]:
                            rows["track_artists"].append((track_id, artist_ids[guest], 1))
                    rows["track_genres"].append((track_id, genre))
                    rows["licences"].append((next_id["licences"], track_id, label))
                    next_id["licences"] += 1
                made += count
            db.executemany("INSERT INTO artists (id, name) VALUES (?, ?)", rows["artists"])
            db.executemany(
                "INSERT INTO albums (id, title, artist_name, year, label, source_key)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows["albums"],
            )
            db.executemany(
                "INSERT INTO tracks (id, title, album_id, track_number, year, duration_s, explicit,"
                " source, source_key, created_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
                rows["tracks"],
            )
            db.executemany(
                "INSERT INTO track_artists (track_id, artist_id, position) VALUES (?, ?, ?)",
                rows["track_artists"],
            )
            db.executemany(
                "INSERT INTO track_genres (track_id, genre_id) VALUES (?, ?)", rows["track_genres"]
            )
            db.executemany(
                "INSERT INTO licences (id, track_id, territories, on_demand_allowed, label)"
                " VALUES (?, ?, '*', 1, ?)",
                rows["licences"],
            )
            db.commit()
            bar.update(task, completed=made)
    db.close()


async def rebuild(path: Path) -> None:
    engine = make_engine(url_of(path))
    try:
        async with make_sessionmaker(engine)() as db:
            with progress() as bar:
                task = bar.add_task("Indexing", total=None)
                await search.rebuild_index(
                    db,
                    batch=10000,
                    on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
                started = time.perf_counter()
                await db.commit()
            console.print(f"index committed and optimised in {time.perf_counter() - started:.1f} s")
    finally:
        await engine.dispose()


def schema_fingerprint() -> dict[str, str]:
    """Each migration's hash, so a catalog built under an older schema is rebuilt, or only
    upgraded when the migrations it was built with are unchanged (`cached`)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for path in sorted((ROOT / "onair" / "db" / "migrations" / "versions").glob("*.py"))
    }


def build(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The small (real catalogs only) and the big database, built or taken from the cache."""
    OUT.mkdir(parents=True, exist_ok=True)
    small = OUT / f"catalog-small-v{BUILD_VERSION}.db"
    small_params: dict[str, object] = {
        "version": BUILD_VERSION,
        "demo": args.demo,
        "schema": schema_fingerprint(),
    }
    if args.rebuild or not cached(small, small_params):
        remove_db(small)
        started = time.perf_counter()
        upgrade(url_of(small))
        asyncio.run(import_real_catalogs(small, args.demo))
        mark_built(small, small_params)
        console.print(f"small catalog built in {time.perf_counter() - started:.1f} s")
    if args.tracks <= 0:
        return small, None
    big = args.db or OUT / f"catalog-{args.tracks}-s{args.seed}-v{BUILD_VERSION}.db"
    big_params = {**small_params, "tracks": args.tracks, "seed": args.seed, "words": args.words}
    if args.rebuild or not cached(big, big_params):
        remove_db(big)
        started = time.perf_counter()
        shutil.copyfile(small, big)
        generate(big, args.tracks, args.seed, args.words)
        generated = time.perf_counter()
        asyncio.run(rebuild(big))
        mark_built(big, big_params)
        console.print(
            f"big catalog built in {time.perf_counter() - started:.1f} s (generating"
            f" {generated - started:.1f} s, indexing {time.perf_counter() - generated:.1f} s)"
        )
    return small, big


# --- measuring --------------------------------------------------------------------------------


def typo(rng: random.Random, word: str) -> str:
    """`word` with one random slip: a letter dropped, doubled, swapped or replaced."""
    i = rng.randrange(len(word) - 1)
    match rng.randrange(4):
        case 0:
            return word[:i] + word[i + 1 :]
        case 1:
            return word[: i + 1] + word[i] + word[i + 1 :]
        case 2:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        case _:
            letter = rng.choice([c for c in "aeioulnrst" if c != word[i]])
            return word[:i] + letter + word[i + 1 :]


def queries(path: Path, count: int, seed: int) -> dict[str, list[str]]:
    """Queries a host would type to find a track that is in the catalog."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    top = db.execute("SELECT max(id) FROM tracks").fetchone()[0]
    kinds: dict[str, list[str]] = {"one word": [], "two words": [], "prefix": [], "typo": []}
    while min(len(v) for v in kinds.values()) < count:
        rowids = search.fts_rowids(rng.randint(1, top))
        marks = ",".join("?" * len(rowids))
        row = db.execute(
            f"SELECT title, artists FROM track_search WHERE rowid IN ({marks})", rowids
        ).fetchone()
        if row is None:
            continue
        title, artists = row[0].split(), row[1].split()
        if len(title) < 2:
            title = title + artists
        if len(title) < 2:
            continue
        first = rng.randrange(len(title) - 1)
        pair = title[first : first + 2]
        kinds["one word"].append(rng.choice(title))
        kinds["two words"].append(" ".join(pair))
        cut = rng.randint(1, max(1, len(pair[1]) - 1))
        kinds["prefix"].append(f"{pair[0]} {pair[1][:cut]}")
        long_words = [i for i, w in enumerate(pair) if len(w) >= search.TYPO_MIN_LENGTH]
        if long_words:
            i = rng.choice(long_words)
            wrong = [*pair]
            wrong[i] = typo(rng, wrong[i])
            kinds["typo"].append(" ".join(wrong))
    db.close()
    return {kind: found[:count] for kind, found in kinds.items()}


def percentile(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass(frozen=True)
class Timing:
    kind: str
    first_ms: list[float]  # each query's time on the first pass
    best_ms: list[float]  # each query's fastest time over all passes
    hits: int


async def measure(
    path: Path, sample: dict[str, list[str]], limit: int, passes: int
) -> list[Timing]:
    """Times every query `passes` times: the first pass, and each query's best (other
    processes on a shared machine only ever add time)."""
    engine = make_engine(url_of(path))
    try:
        async with make_sessionmaker(engine)() as db:
            for query in itertools.islice(itertools.chain(*sample.values()), 50):
                await search.search_track_ids(db, query, limit=limit)  # warm the page cache
            runs: dict[str, list[list[float]]] = {kind: [] for kind in sample}
            hits: dict[str, int] = {}
            for _ in range(passes):
                for kind, batch in sample.items():
                    samples, found = [], 0
                    for query in batch:
                        started = time.perf_counter()
                        ids = await search.search_track_ids(db, query, limit=limit)
                        samples.append((time.perf_counter() - started) * 1000)
                        found += bool(ids)
                    runs[kind].append(samples)
                    hits[kind] = found
            return [
                Timing(kind, r[0], [min(t) for t in zip(*r, strict=True)], hits[kind])
                for kind, r in runs.items()
            ]
    finally:
        await engine.dispose()


def report(title: str, path: Path, timings: list[Timing], passes: int) -> None:
    db = sqlite3.connect(path)
    size = db.execute("SELECT count(*) FROM tracks").fetchone()[0]
    db.close()
    table = Table(
        title=f"{title}: {size:,} tracks, {path.stat().st_size / 2**20:,.0f} MiB",
        caption=f"ms; p50-max: each query's best of {passes} passes; last column: first pass",
    )
    for column in ("query", "n", "found", "p50", "p95", "p99", "max", "p95 1st"):
        table.add_column(column, justify="left" if column == "query" else "right")
    for t in timings:
        table.add_row(
            t.kind,
            str(len(t.best_ms)),
            f"{t.hits / len(t.best_ms):.0%}",
            f"{statistics.median(t.best_ms):.2f}",
            f"{percentile(t.best_ms, 95):.2f}",
            f"{percentile(t.best_ms, 99):.2f}",
            f"{max(t.best_ms):.2f}",
            f"{percentile(t.first_ms, 95):.2f}",
        )
    Console().print(table)


def examples(sample: dict[str, list[str]]) -> Iterator[str]:
    for kind, batch in sample.items():
        yield f"{kind}: " + ", ".join(repr(q) for q in batch[:4])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tracks", type=int, default=1_000_000, help="generated tracks (0: only the real catalogs)"
    )
    parser.add_argument(
        "--db", type=Path, help="where to keep the big catalog (default bench/out/)"
    )
    parser.add_argument("--queries", type=int, default=300, help="queries timed per kind")
    parser.add_argument(
        "--passes", type=int, default=3, help="times each query is run (the best is kept)"
    )
    parser.add_argument("--limit", type=int, default=20, help="results asked for per query")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--words", type=int, default=60_000, help="generated vocabulary size")
    parser.add_argument(
        "--no-demo", dest="demo", action="store_false", help="leave out the demo songs"
    )
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached catalogs")
    args = parser.parse_args()
    small, big = build(args)
    for title, path in (("real catalogs", small), ("with generated tracks", big)):
        if path is None:
            continue
        sample = queries(path, args.queries, args.seed)
        console.print("\n".join(examples(sample)))
        # Latency on a shared machine follows its load; say what it was.
        load = os.getloadavg()[0]
        timings = asyncio.run(measure(path, sample, args.limit, args.passes))
        report(f"{title} (load {load:.1f} on {os.cpu_count()} CPUs)", path, timings, args.passes)


if __name__ == "__main__":
    main()
