"""SQLAlchemy 2 session per worker, committed before the caller is told.

nameko runs an entrypoint's ``handle_result`` (which sends the RPC reply or
acks the event message) *before* dependencies see ``worker_result``. A provider
that committed in ``worker_result`` would therefore answer "done" for work that
may still fail to commit. ``Database`` instead wraps the worker's entrypoint
method in ``worker_setup`` (the service instance belongs to that one worker),
so the commit — or the rollback on error — happens inside the call, and a
failed commit becomes the call's error. Callbacks registered with
``after_commit`` (event publishing) run only once the commit succeeded.
"""
from __future__ import annotations

import functools
import logging
import weakref

import random
import time

from nameko.extensions import DependencyProvider
import pymysql.connections
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from shared.errors import Unavailable

log = logging.getLogger(__name__)

_after_commit: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _PyMySQLConnection(pymysql.connections.Connection):
    """PyMySQL's connection, with its default TLS context built once per process.

    Without TLS options PyMySQL uses "preferred" TLS: every new connection builds an
    ``ssl.create_default_context()`` (loading the system CA store: ~30 ms of CPU) in
    case the server offers TLS. The context is the same every time and may be shared,
    so it is built once; connections with explicit TLS options build theirs as before.
    """

    _default_ctx = None

    def _create_ssl_ctx(self, sslp):
        if sslp:
            return super()._create_ssl_ctx(sslp)
        cls = _PyMySQLConnection
        if cls._default_ctx is None:
            cls._default_ctx = super()._create_ssl_ctx(sslp)
        return cls._default_ctx


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 4) -> Engine:
    # The pool holds a connection per concurrent worker: overflow connections are
    # closed on return, and re-opening one per call costs more than the query.
    engine = _create_engine(url, pool_size, max_overflow)
    if engine.dialect.driver == "pymysql":
        @event.listens_for(engine, "do_connect")
        def _connect(dialect, conn_rec, cargs, cparams):
            return _PyMySQLConnection(*cargs, **cparams)
    return engine


def _create_engine(url: str, pool_size: int, max_overflow: int) -> Engine:
    return create_engine(
        url,
        pool_pre_ping=True,      # a MariaDB restart must not surface as "server has gone away"
        pool_recycle=3600,
        pool_size=int(pool_size),
        max_overflow=int(max_overflow),
        pool_timeout=10,
        connect_args={"connect_timeout": 5, "read_timeout": 30, "write_timeout": 30},
    )


# MySQL/MariaDB: 1213 deadlock found, 1205 lock wait timeout — the transaction was
# rolled back and running it again is the documented remedy.
RETRYABLE_ERRORS = (1213, 1205)


def retry_deadlocks(attempts: int = 4):
    """Mark an entrypoint whose whole transaction may be run again after a deadlock.

    Only for methods whose effects before the commit are all in the database (events
    go through the outbox, which rolls back with them): the ``Database`` provider
    rolls back, forgets the attempt's after-commit callbacks and calls it again.
    """
    def mark(method):
        method._mae_deadlock_attempts = attempts
        return method
    return mark


def retryable(exc: BaseException) -> bool:
    """A deadlock or lock wait timeout: the transaction may simply be run again."""
    return isinstance(exc, OperationalError) and bool(exc.orig and exc.orig.args) \
        and exc.orig.args[0] in RETRYABLE_ERRORS


# Connection-level failures: can't connect (2002/2003), gone away (2006), lost during a
# query (2013), the pool could not hand out a connection in time; and the server refusing
# a new connection: too many connections (1040), the account's max_user_connections
# (1203 global, 1226 per account). The database is down, restarting or full, not the
# request wrong: the caller hears Unavailable (HTTP 503, retry), not an internal error.
UNREACHABLE_ERRORS = (1040, 1203, 1226, 2002, 2003, 2006, 2013, 2055)


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    args = getattr(exc.orig, "args", None) or ()
    return bool(args) and args[0] in UNREACHABLE_ERRORS


def after_commit(worker_ctx, callback) -> None:
    """Run ``callback()`` after this worker's transaction commits."""
    _after_commit.setdefault(worker_ctx, []).append(callback)


def pending_after_commit(worker_ctx) -> tuple:
    """The callbacks waiting for this worker's commit (empty once it ran or rolled back)."""
    return tuple(_after_commit.get(worker_ctx, ()))


def pool_of(config: dict) -> tuple[int, int]:
    """(pool size, overflow) of a service process: a connection per worker at least."""
    pool_size = max(int(config.get("DB_POOL_SIZE", 10)), int(config.get("max_workers", 10)))
    return pool_size, int(config.get("DB_MAX_OVERFLOW", 4))


class BudgetExceeded(RuntimeError):
    """More connections may be opened than the database accepts (``check_budget``)."""


def check_budget(engine: Engine, config: dict, service: str, per_process: int) -> dict | None:
    """The connection budget, checked at start (docs/architecture.md, "Database budget").

    ``DB_BUDGET_PROCESSES`` service processes (every replica of every service, plus the pods
    a rolling update adds) may each open ``per_process`` connections; with the
    ``DB_BUDGET_HEADROOM`` share of ``@@max_connections`` kept free (administrators,
    migrations, monitoring), that must fit. Past it: a warning, or — with
    ``DB_BUDGET_ENFORCE`` (production) — this process refuses to start. A database that
    does not answer is not judged here (readiness reports it)."""
    processes = int(config.get("DB_BUDGET_PROCESSES", 0) or 0)
    if processes <= 0:
        return None
    try:
        with engine.connect() as conn:
            max_connections = int(conn.execute(text("SELECT @@max_connections")).scalar())
    except DBAPIError as exc:
        log.warning("connection budget not checked: the database did not answer (%s)", exc.orig)
        return None
    headroom = float(config.get("DB_BUDGET_HEADROOM", 0.2))
    allowed = int(max_connections * (1 - headroom))
    needed = processes * per_process
    verdict = {"service": service, "processes": processes, "per_process": per_process,
               "needed": needed, "allowed": allowed, "max_connections": max_connections}
    if needed <= allowed:
        return verdict
    message = (f"Database connection budget exceeded: {processes} processes (DB_BUDGET_PROCESSES) x "
               f"{per_process} connections each (DB_POOL_SIZE/max_workers + DB_MAX_OVERFLOW) = {needed}, "
               f"but max_connections is {max_connections} and {headroom:.0%} of it is kept free "
               f"({allowed} usable). Raise the database's max_connections or lower the pool or the "
               f"process count (docs/architecture.md, \"Database budget\").")
    if str(config.get("DB_BUDGET_ENFORCE", "")).lower() in ("1", "true", "yes"):
        raise BudgetExceeded(message)
    log.warning(message, extra=verdict)
    return verdict


class Database(DependencyProvider):
    def __init__(self):
        self.sessions: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

    def setup(self):
        config = self.container.config
        self.pool_size, self.max_overflow = pool_of(config)
        self.engine = make_engine(config["DB_URL"], self.pool_size, self.max_overflow)
        check_budget(self.engine, config, self.container.service_name, self.pool_size + self.max_overflow)

    def stop(self):
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        session = Session(self.engine, expire_on_commit=False)
        self.sessions[worker_ctx] = session
        return session

    def worker_setup(self, worker_ctx):
        service = worker_ctx.service
        name = worker_ctx.entrypoint.method_name
        method = getattr(service, name)
        session = self.sessions[worker_ctx]

        attempts = getattr(method, "_mae_deadlock_attempts", 1)

        @functools.wraps(method)
        def in_transaction(*args, **kwargs):
            for attempt in range(1, attempts + 1):
                try:
                    result = method(*args, **kwargs)
                    session.commit()
                    break
                except BaseException as exc:
                    session.rollback()
                    if _unreachable(exc):
                        raise Unavailable("The database is unavailable; try again shortly.",
                                          {"dependency": "database"}) from exc
                    if attempt == attempts or not retryable(exc):
                        raise
                    _after_commit.pop(worker_ctx, None)
                    time.sleep(random.uniform(0.005, 0.05) * attempt)
            for callback in _after_commit.pop(worker_ctx, ()):
                callback()
            return result

        setattr(service, name, in_transaction)

    def worker_teardown(self, worker_ctx):
        _after_commit.pop(worker_ctx, None)
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()

    def check(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
