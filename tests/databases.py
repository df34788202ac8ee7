"""Where the tests' databases live: SQLite in each data dir (the default), or, with
ONAIR_TEST_DATABASE=postgresql, a fresh PostgreSQL database for each data dir.

Under PostgreSQL every `Settings` without an explicit `database_url` gets a database of its own
for its data dir, as SQLite gets a file in it: the same data dir (two nodes, a server and a CLI
run on one folder) means the same database, another data dir another database. The schema is
migrated once per session into a template, and each database is a `CREATE DATABASE ... TEMPLATE`
of it (a tenth of a second, made ahead in a thread so tests seldom wait); it is dropped WITH
(FORCE) in the background once the test, module or session that made it is over. Names carry a
random token, so parallel runs on one server never collide.
"""

from __future__ import annotations

import asyncio
import os
import queue
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import text

from onair.db.base import make_engine
from onair.db.migrate import upgrade
from onair.settings import Settings

T = TypeVar("T")

ADMIN_DSN = os.environ.get("ONAIR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def backend() -> str:
    """The switch: `sqlite` (the default) or `postgresql`."""
    value = os.environ.get("ONAIR_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"
    if value in ("postgres", "pg"):
        value = "postgresql"
    if value not in ("sqlite", "postgresql"):
        raise ValueError(f"ONAIR_TEST_DATABASE must be sqlite or postgresql, not {value!r}")
    return value


def on_postgres() -> bool:
    return backend() == "postgresql"


def run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs a coroutine to the end from sync code, even where an event loop is running (a test's
    own loop, sync Playwright's): in a thread with a loop of its own."""
    result: list[T] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(make()))
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=work, name="onair-test-db")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _url(name: str) -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


class _AdminThread:
    """One admin connection on a thread of its own, running statements one by one."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result()

    def execute(self, sql: str) -> None:
        async def run() -> None:
            if self._conn is None:
                self._conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
            await self._conn.execute(sql)

        self.call(run)

    def close(self) -> None:
        async def shut() -> None:
            if self._conn is not None:
                await self._conn.close()

        self.call(shut)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class PostgresDatabases:
    """The session's PostgreSQL databases: the template, the ones made ahead, and who owns each
    (a test, a module or the session) so each is dropped when its owner is done."""

    AHEAD = 2
    DROPPERS = 8
    DROP_EVERY_S = 5.0

    def __init__(self) -> None:
        self.prefix = f"onair_t{os.getpid()}_{secrets.token_hex(3)}"
        self.template = f"{self.prefix}_template"
        self._count = 0
        self._lock = threading.Lock()
        self._resolving = threading.Lock()
        self._by_dir: dict[Path, str] = {}
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=self.AHEAD)
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._stop = threading.Event()
        self._undropped: list[str] = []
        self._started = False
        self._maker: threading.Thread | None = None
        self._dropper: threading.Thread | None = None
        # Owners, innermost last: the session, then the module and the test running now.
        self._session: list[str] = []
        self._module: list[str] | None = None
        self._test: tuple[Path, list[str], bool] | None = None

    # -- the workers ------------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._maker = threading.Thread(target=self._make_ahead, name="onair-test-db-maker")
        self._dropper = threading.Thread(target=self._drop_behind, name="onair-test-db-dropper")
        self._maker.start()
        self._dropper.start()

    def _next_name(self) -> str:
        with self._lock:
            self._count += 1
            return f"{self.prefix}_{self._count}"

    def _make_ahead(self) -> None:
        admin = _AdminThread("onair-test-db-maker-loop")
        try:
            admin.execute(f'CREATE DATABASE "{self.template}"')
            upgrade(_url(self.template))
            admin.execute(f'ALTER DATABASE "{self.template}" WITH IS_TEMPLATE true')
            while not self._stop.is_set():
                name = self._next_name()
                admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                while True:
                    try:
                        self._ready.put(name, timeout=0.2)
                        break
                    except queue.Full:
                        if self._stop.is_set():
                            self._drops.put(name)
                            return
        except BaseException as exc:  # the tests waiting for a database get it
            self._ready.put(exc)
        finally:
            admin.close()

    def _drop_behind(self) -> None:
        asyncio.run(self._drops_in_parallel())

    async def _drops_in_parallel(self) -> None:
        # Each DROP DATABASE waits for a checkpoint (seconds of fsync on a busy server, which
        # stall every commit meanwhile); drops running side by side share one. So they are
        # gathered for a few seconds and dropped in batches, a checkpoint or two per batch.
        pool = await asyncpg.create_pool(ADMIN_DSN, min_size=1, max_size=self.DROPPERS)
        loop = asyncio.get_running_loop()

        async def drop(name: str) -> None:
            try:
                async with pool.acquire() as conn:
                    if name == self.template:
                        await conn.execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except (OSError, asyncpg.PostgresError) as exc:
                self._undropped.append(f"{name}: {exc!r}")

        def gather_batch() -> tuple[list[str], bool]:
            batch: list[str] = []
            first = self._drops.get()
            if first is None:
                return batch, True
            batch.append(first)
            deadline = time.monotonic() + self.DROP_EVERY_S
            while len(batch) < self.DROPPERS * 2:
                try:
                    got = self._drops.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if got is None:
                    return batch, True
                batch.append(got)
            return batch, False

        try:
            done = False
            while not done:
                batch, done = await loop.run_in_executor(None, gather_batch)
                rest = [n for n in batch if n != self.template]
                await asyncio.gather(*(drop(n) for n in rest))
                if self.template in batch:
                    await drop(self.template)
        finally:
            await pool.close()

    def _take(self) -> str:
        self._start()
        got = self._ready.get(timeout=120)
        if isinstance(got, BaseException):
            self._ready.put(got)  # every later test fails the same way
            raise RuntimeError(f"PostgreSQL databases for the tests failed: {got!r}") from got
        return got

    # -- what the tests see ----------------------------------------------------------------

    def url_for(self, data_dir: Path) -> str:
        """The database of this data dir, made on first use."""
        key = data_dir.resolve()
        with self._resolving:  # a server's thread and the test asking at once get one database
            with self._lock:
                known = self._by_dir.get(key)
            if known is not None:
                return _url(known)
            if self._test is not None and self._test[2]:
                name = self._next_name()
                run_sync(lambda: _admin_execute(f'CREATE DATABASE "{name}"'))
            else:
                name = self._take()
            with self._lock:
                self._by_dir[key] = name
                self._owner(key).append(name)
            return _url(name)

    def clone(self, source_dir: Path, target_dir: Path) -> str:
        """The database of `target_dir` as a copy of `source_dir`'s (no one may be connected to
        the source), as copying an SQLite data dir copies its database."""
        source = self._by_dir[source_dir.resolve()]
        key = target_dir.resolve()
        name = self._next_name()
        run_sync(lambda: _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
        with self._lock:
            self._by_dir[key] = name
            self._owner(key).append(name)
        return _url(name)

    def _owner(self, key: Path) -> list[str]:
        # A test owns what lies in its own tmp_path; anything else lives as long as the module
        # (module fixtures, data dirs from tmp_path_factory), or the session outside one.
        if self._test is not None and key.is_relative_to(self._test[0]):
            return self._test[1]
        if self._module is not None:
            return self._module
        return self._session

    def _release(self, names: list[str]) -> None:
        with self._lock:
            gone = set(names)
            for key in [k for k, v in self._by_dir.items() if v in gone]:
                del self._by_dir[key]
        for name in names:
            self._drops.put(name)

    @contextmanager
    def module(self) -> Iterator[None]:
        self._module = []
        try:
            yield
        finally:
            names, self._module = self._module, None
            self._release(names)

    @contextmanager
    def test(self, tmp_path: Path, *, unmigrated: bool = False) -> Iterator[None]:
        """A test's databases; `unmigrated` ones are made empty, as an SQLite data dir starts."""
        self._test = (tmp_path.resolve(), [], unmigrated)
        try:
            yield
        finally:
            names = self._test[1]
            self._test = None
            self._release(names)

    def close(self) -> None:
        """Drops everything left, the template last, and waits for it."""
        self._stop.set()
        if self._maker is not None:
            while self._maker.is_alive():
                try:
                    got = self._ready.get(timeout=0.1)
                    if isinstance(got, str):
                        self._drops.put(got)
                except queue.Empty:
                    pass
            self._maker.join()
        while True:
            try:
                got = self._ready.get_nowait()
            except queue.Empty:
                break
            if isinstance(got, str):
                self._drops.put(got)
        self._release(list(self._session))
        with self._lock:
            left = list(self._by_dir.values())
            self._by_dir.clear()
        for name in left:
            self._drops.put(name)
        if self._started:
            self._drops.put(self.template)
        self._drops.put(None)
        if self._dropper is not None:
            self._dropper.join()
        if self._undropped:
            raise RuntimeError(f"test databases left on the server: {self._undropped}")


class SwitchedDatabaseUrl:
    """What `Settings.resolved_database_url` is under PostgreSQL: an explicit database_url as
    given, else the data dir's own database."""

    def __init__(self, databases: PostgresDatabases) -> None:
        self.databases = databases

    def __get__(self, settings: Settings | None, owner: type | None = None) -> Any:
        if settings is None:
            return self
        return settings.database_url or self.databases.url_for(settings.data_dir)


def copy_data_dir(source: Path, target: Path) -> None:
    """Copies a data dir with its database, as copying an SQLite data dir copies its file: under
    PostgreSQL the database is cloned as a template (nobody may be connected to the source)."""
    shutil.copytree(source, target)
    if on_postgres():
        switched = vars(Settings)["resolved_database_url"]
        assert isinstance(switched, SwitchedDatabaseUrl), "the session fixture is not running"
        switched.databases.clone(source, target)


def execute_sql(url: str, sql: str, **params: Any) -> None:
    """Runs one statement on a database of either kind and commits, from sync or async code."""

    async def run() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text(sql), params)
        finally:
            await engine.dispose()

    run_sync(run)


async def _admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
