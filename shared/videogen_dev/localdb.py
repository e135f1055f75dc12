"""The embedded Postgres: a private cluster the project starts for itself.

The cluster lives in ``<home>/pgdata`` (``home`` is ``VIDEOGEN_HOME``, ``.videogen`` by
default, resolved against the project root) and listens on 127.0.0.1:54322 with user
``postgres`` / password ``postgres`` and database ``postgres``: the Supabase CLI's local
defaults, so ``LOCAL_DATABASE_URL`` works unchanged against it or against a
``supabase start`` stack. It uses the machine's PostgreSQL binaries. PostgreSQL refuses to
run as root, so when we are root the binaries run as the ``postgres`` system user (or a
``videogen`` system user created on first use) and the data directory belongs to it.

If ``DATABASE_URL`` is set in the environment to anything but the local default, nothing
here starts or stops a server: :func:`ensure_running` just returns that URL.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from videogen.config import LOCAL_DATABASE_URL, get_settings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PORT = 54322
USER = "postgres"
PASSWORD = "postgres"  # noqa: S105 - the Supabase CLI's well-known local password
DATABASE = "postgres"
SERVICE_ACCOUNT = "videogen"  # created only when running as root and `postgres` is absent

# Written to <pgdata>/videogen.conf on every start, so a change here applies on restart.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "port": str(PORT),
    "max_connections": "200",
    "shared_preload_libraries": "''",  # 'pg_cron' when installed: see PG_CRON_SETTINGS
    # TCP only: a socket directory may not be writable by the service account, and a
    # deep project path can exceed the 107-byte socket path limit.
    "unix_socket_directories": "''",
    # Supabase runs with logical decoding on (Realtime's postgres_changes needs it).
    "wal_level": "logical",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}
# Where pg_cron (Debian's postgresql-<major>-cron) is installed for the server binaries in
# use, it is loaded at start for the database `videogen up` uses, so the schedules of
# sql/schema/10_schedules.sql run as on Supabase (otherwise videogen_dev.scheduler runs them).
PG_CRON_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "'pg_cron'",
    "cron.database_name": f"'{DATABASE}'",
    # Jobs run in background workers: pg_cron's default (a libpq connection to localhost)
    # would need a password and a Unix socket, which this cluster does not offer.
    "cron.use_background_workers": "on",
    "max_worker_processes": "16",
}
# Durability off: only for throwaway clusters (the test suite), never the main job.
FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
_CONF_NAME = "videogen.conf"
_INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. Install them, "
    "e.g. `sudo apt-get install postgresql` (Debian/Ubuntu) or `brew install postgresql` "
    "(macOS), or set DATABASE_URL to an existing Postgres or Supabase database."
)


class LocalDbError(RuntimeError):
    """The embedded Postgres could not be prepared, started or reached."""


@dataclass(frozen=True)
class ClusterPaths:
    """Where the embedded cluster keeps its files."""

    home: Path
    data_dir: Path
    log_file: Path
    lock_file: Path
    port: int = PORT

    @property
    def dsn(self) -> str:
        """The DSN of this cluster's ``postgres`` database."""
        return f"postgresql://{USER}:{PASSWORD}@{HOST}:{self.port}/{DATABASE}"


@dataclass(frozen=True)
class Account:
    """The unprivileged OS user the server binaries run as."""

    name: str
    uid: int
    gid: int


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------


def external_database_url() -> str | None:
    """``DATABASE_URL`` from the environment, when it is not the local default."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url and url != LOCAL_DATABASE_URL:
        return url
    return None


def local_dsn() -> str:
    """The DSN of the embedded cluster's ``postgres`` database."""
    return f"postgresql://{USER}:{PASSWORD}@{HOST}:{PORT}/{DATABASE}"


def cluster_paths() -> ClusterPaths:
    """Paths of the embedded cluster, from ``settings.state_dir``."""
    home = get_settings().state_dir.expanduser()
    if not home.is_absolute():
        from videogen_dev.migrations import project_root  # local import: schema imports psycopg

        home = project_root() / home
    return ClusterPaths(
        home=home,
        data_dir=home / "pgdata",
        log_file=home / "pgdata.log",
        lock_file=home / "pgdata.lock",
    )


def ensure_running(*, fast: bool = False, timeout: float = 60.0) -> str:
    """Start the embedded cluster if needed (initialising it first) and return its DSN.

    Reuses a cluster that is already running, whatever mode it was started in.
    ``fast=True`` starts it with durability off (fsync, synchronous_commit and
    full_page_writes off) and is meant for tests only; ``fast=False`` finding a fast cluster
    logs a warning rather than restarting it under a running test session. Returns
    ``DATABASE_URL`` untouched when it is set to another server.
    """
    external = external_database_url()
    if external is not None:
        return external
    paths = cluster_paths()
    paths.home.mkdir(parents=True, exist_ok=True)
    dsn = local_dsn()
    with _locked(paths.lock_file):
        account = service_account()
        if _is_running(paths, account):
            _wait_until_accepting(dsn, timeout)
            if not fast and _server_is_fast(dsn):
                # Not restarted here: a test session may be using it right now.
                log.warning(
                    "the embedded Postgres runs in fast mode (fsync off, started by tests); "
                    "run `videogen db down && videogen db up` for a durable one"
                )
            return dsn
        if _port_in_use(HOST, PORT):
            if _can_connect(dsn):
                log.warning("port %s is served by another Postgres; using it as is", PORT)
                return dsn
            raise LocalDbError(
                f"port {PORT} on {HOST} is taken by another process that does not accept the "
                "local credentials (another Postgres or a `supabase start` stack?). Stop it, "
                "or set DATABASE_URL to the database you want to use."
            )
        if not _is_initialised(paths):
            _initialise(paths, account)
        _start(paths, account, fast=fast, timeout=timeout)
        _wait_until_accepting(dsn, timeout)
        log.info("embedded Postgres running at %s:%s (data in %s)", HOST, PORT, paths.data_dir)
        return dsn


def start_cluster(paths: ClusterPaths, *, fast: bool = False, timeout: float = 60.0) -> str:
    """Initialise (if needed) and start a cluster of its own at ``paths``; returns its DSN.

    For tests that must restart or stop a server without touching the shared one.
    """
    account = service_account()
    paths.home.mkdir(parents=True, exist_ok=True)
    if not _is_initialised(paths):
        _initialise(paths, account)
    _start(paths, account, fast=fast, timeout=timeout)
    _wait_until_accepting(paths.dsn, timeout)
    return paths.dsn


def restart_cluster(paths: ClusterPaths, *, timeout: float = 60.0) -> None:
    """Restart a cluster started by :func:`start_cluster` (fast shutdown: clients cut)."""
    account = service_account(create=False)
    _pg_ctl(
        paths,
        account,
        "restart",
        "-D",
        str(paths.data_dir),
        "-m",
        "fast",
        "-w",
        "-l",
        str(paths.log_file),
        "-t",
        str(int(timeout)),
    )


def stop_cluster(paths: ClusterPaths, *, timeout: float = 60.0) -> None:
    """Stop a cluster started by :func:`start_cluster`."""
    account = service_account(create=False)
    if _is_running(paths, account):
        _pg_ctl(
            paths,
            account,
            "stop",
            "-D",
            str(paths.data_dir),
            "-m",
            "immediate",
            "-w",
            "-t",
            str(int(timeout)),
        )


def stop(*, timeout: float = 60.0) -> bool:
    """Stop the embedded cluster; True if it was running. A no-op for an external DATABASE_URL."""
    if external_database_url() is not None:
        return False
    paths = cluster_paths()
    if not _is_initialised(paths):
        return False
    with _locked(paths.lock_file):
        account = service_account()
        if not _is_running(paths, account):
            return False
        _pg_ctl(
            paths,
            account,
            "stop",
            "-D",
            str(paths.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout)),
        )
        return True


def status() -> dict[str, Any]:
    """What is known about the database: managed or external, running, where, which version."""
    external = external_database_url()
    if external is not None:
        return {
            "managed": False,
            "dsn": redact(external),
            "running": _can_connect(external),
            "server_version": _server_version(external),
        }
    paths = cluster_paths()
    dsn = local_dsn()
    initialised = _is_initialised(paths)
    account = service_account(create=False) if initialised else None
    running = initialised and _is_running(paths, account)
    try:
        bindir: str | None = str(find_bindir(_data_version(paths)))
    except LocalDbError:
        bindir = None
    return {
        "managed": True,
        "dsn": dsn,
        "running": running,
        "initialised": initialised,
        "data_dir": str(paths.data_dir),
        "log_file": str(paths.log_file),
        "port": PORT,
        "pid": _postmaster_pid(paths) if running else None,
        "bindir": bindir,
        "server_version": _server_version(dsn) if running else None,
        "fast": _server_is_fast(dsn) if running else None,
        # pg_cron loaded: it runs private.schedules; otherwise `videogen up`'s scheduler does.
        "pg_cron": _setting(dsn, "shared_preload_libraries") == "pg_cron" if running else None,
        "run_as": account.name if account else None,
        "port_taken_by_other": (not running) and _port_in_use(HOST, PORT),
    }


def redact(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (for printing and logs)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


def find_bindir(version: str | None = None) -> Path:
    """The directory holding initdb/pg_ctl/postgres, preferring a given major version."""
    candidates: list[Path] = []
    if override := os.environ.get("VIDEOGEN_PG_BINDIR"):
        candidates.append(Path(override))
    versioned = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    if version is not None:
        candidates += [p for p in versioned if p.parent.name == version]
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
    candidates += versioned
    if pg_ctl := shutil.which("pg_ctl"):
        candidates.append(Path(pg_ctl).resolve().parent)
    for directory in candidates:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise LocalDbError(_INSTALL_HINT)


def pg_cron_installed(bindir: Path) -> bool:
    """True if pg_cron's library is installed for the server binaries in ``bindir``
    (Debian's layout: ``/usr/lib/postgresql/<major>/lib/pg_cron.so``)."""
    return (bindir.parent / "lib" / "pg_cron.so").is_file()


def pg_dump_path() -> Path:
    """The pg_dump of the server binaries in use, else the newest one installed."""
    directories = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    with contextlib.suppress(LocalDbError):
        directories.insert(0, find_bindir())
    for directory in directories:
        if (directory / "pg_dump").is_file():
            return directory / "pg_dump"
    raise LocalDbError("pg_dump is not installed (it comes with the PostgreSQL client)")


def dump_schema(dsn: str) -> str:
    """A database's schema as ``pg_dump --schema-only --no-owner`` writes it, for comparing.

    The migration bookkeeping schema, comments, blank lines and the per-run
    ``\\restrict`` keys (pg_dump ≥ 15.14) are left out.
    """
    out = subprocess.run(
        [
            str(pg_dump_path()),
            "--schema-only",
            "--no-owner",
            "--exclude-schema=supabase_migrations",
            f"--dbname={dsn}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    lines = [
        line
        for line in out.splitlines()
        if line.strip() and not line.startswith(("--", "\\restrict", "\\unrestrict"))
    ]
    return "\n".join(lines)


def service_account(*, create: bool = True) -> Account | None:
    """The OS user the server runs as when we are root (None when we are not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SERVICE_ACCOUNT):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if not create:
        return None
    useradd = shutil.which("useradd")
    if useradd is None:
        raise LocalDbError(
            "running as root, and neither a `postgres` user nor `useradd` to create a "
            f"`{SERVICE_ACCOUNT}` user exists; create an unprivileged user named "
            f"`{SERVICE_ACCOUNT}` or run as a normal user"
        )
    subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_ACCOUNT,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    log.info("created system user %s to run the embedded Postgres", SERVICE_ACCOUNT)
    entry = pwd.getpwnam(SERVICE_ACCOUNT)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


# ------------------------------------------------------------------------------------------
# Cluster lifecycle
# ------------------------------------------------------------------------------------------


def _initialise(paths: ClusterPaths, account: Account | None) -> None:
    """Run initdb into a scratch directory, then move it into place (never half a cluster)."""
    bindir = find_bindir()
    scratch = paths.home / "pgdata.init"
    shutil.rmtree(scratch, ignore_errors=True)
    if paths.data_dir.exists() and not any(paths.data_dir.iterdir()):
        paths.data_dir.rmdir()
    if paths.data_dir.exists():
        raise LocalDbError(
            f"{paths.data_dir} exists but is not a PostgreSQL data directory; remove it"
        )
    _make_reachable(paths.home, account)
    scratch.mkdir(mode=0o700)
    _give(scratch, account)
    pwfile = paths.home / "pgdata.pwfile"
    pwfile.write_text(PASSWORD + "\n")
    pwfile.chmod(0o600)
    _give(pwfile, account)
    try:
        args = [
            str(bindir / "initdb"),
            "-D",
            str(scratch),
            "--username",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            f"--locale={_locale()}",
        ]
        log.info("initialising the embedded Postgres in %s", paths.data_dir)
        _run(args, account, timeout=300)
    finally:
        pwfile.unlink(missing_ok=True)
    conf = scratch / "postgresql.conf"
    with conf.open("a") as handle:
        handle.write(
            f"\n# Settings managed by videogen_dev.localdb\ninclude_if_exists = '{_CONF_NAME}'\n"
        )
    scratch.rename(paths.data_dir)


def _start(paths: ClusterPaths, account: Account | None, *, fast: bool, timeout: float) -> None:
    """Write our settings and start the server, waiting until it is ready."""
    _write_settings(paths, account)
    paths.log_file.touch(exist_ok=True)
    _give(paths.log_file, account)
    options = " ".join(f"-c {k}={v}" for k, v in FAST_SETTINGS.items()) if fast else ""
    args = [
        "start",
        "-D",
        str(paths.data_dir),
        "-l",
        str(paths.log_file),
        "-w",
        "-t",
        str(int(timeout)),
    ]
    if options:
        args += ["-o", options]
    try:
        _pg_ctl(paths, account, *args)
    except LocalDbError as exc:
        raise LocalDbError(
            f"{exc}\n--- last lines of {paths.log_file} ---\n{_tail(paths)}"
        ) from exc


def _write_settings(paths: ClusterPaths, account: Account | None) -> None:
    """(Re)write ``videogen.conf`` in the data directory."""
    target = paths.data_dir / _CONF_NAME
    lines = ["# Written by videogen_dev.localdb on every start; edit SERVER_SETTINGS instead."]
    settings = {**SERVER_SETTINGS, "port": str(paths.port)}
    if pg_cron_installed(find_bindir(_data_version(paths))):
        settings.update(PG_CRON_SETTINGS)
    lines += [f"{key} = {value}" for key, value in settings.items()]
    target.write_text("\n".join(lines) + "\n")
    target.chmod(0o600)
    _give(target, account)


def _is_initialised(paths: ClusterPaths) -> bool:
    """True once initdb has completed in the data directory."""
    return (paths.data_dir / "PG_VERSION").is_file()


def _is_running(paths: ClusterPaths, account: Account | None) -> bool:
    """True if the postmaster of our data directory is alive (``pg_ctl status``)."""
    if not _is_initialised(paths):
        return False
    bindir = find_bindir(_data_version(paths))
    result = _run(
        [str(bindir / "pg_ctl"), "status", "-D", str(paths.data_dir)],
        account,
        check=False,
        timeout=30,
    )
    return result.returncode == 0


def _pg_ctl(paths: ClusterPaths, account: Account | None, *args: str) -> None:
    """Run pg_ctl with the binaries matching the data directory."""
    bindir = find_bindir(_data_version(paths))
    if "-D" not in args:
        args = (*args, "-D", str(paths.data_dir))
    _run([str(bindir / "pg_ctl"), *args], account, timeout=600)


def _data_version(paths: ClusterPaths) -> str | None:
    """Major version recorded in the data directory, if there is one."""
    with contextlib.suppress(OSError):
        return (paths.data_dir / "PG_VERSION").read_text().strip()
    return None


def _postmaster_pid(paths: ClusterPaths) -> int | None:
    """PID from ``postmaster.pid``."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((paths.data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


def _tail(paths: ClusterPaths, lines: int = 20) -> str:
    """The end of the server log, for error messages."""
    with contextlib.suppress(OSError):
        return "\n".join(paths.log_file.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


# ------------------------------------------------------------------------------------------
# Running as an unprivileged user
# ------------------------------------------------------------------------------------------


def _run(
    args: list[str], account: Account | None, *, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run a server binary, as ``account`` when given (we are root)."""
    kwargs: dict[str, Any] = {}
    if account is not None:
        kwargs = {"user": account.uid, "group": account.gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd="/",
            env=env,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalDbError(f"{Path(args[0]).name} failed: {exc}") from exc
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        command = " ".join([Path(args[0]).name, *args[1:2]])
        raise LocalDbError(f"`{command}` failed (exit {result.returncode}): {output}")
    return result


def _give(path: Path, account: Account | None) -> None:
    """Hand a file or directory to the service account."""
    if account is not None:
        os.chown(path, account.uid, account.gid)


def _make_reachable(home: Path, account: Account | None) -> None:
    """Make ``home`` and every parent traversable by the service account (adds o+x only)."""
    if account is None:
        return
    for directory in [home.resolve(), *home.resolve().parents]:
        mode = directory.stat().st_mode
        if directory.stat().st_uid != account.uid and not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so %s can reach the data directory", directory, account.name)
            directory.chmod(mode | stat.S_IXOTH)


def _locale() -> str:
    """C.UTF-8 when the system has it (proper upper/lower for non-ASCII), else C."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
        if any(line.strip().lower() in ("c.utf8", "c.utf-8") for line in out.splitlines()):
            return "C.UTF-8"
    return "C"


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Serialise start/stop between processes sharing the same home."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------
# Talking to the server
# ------------------------------------------------------------------------------------------


def _port_in_use(host: str, port: int) -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def _can_connect(dsn: str) -> bool:
    """True if a connection with these credentials succeeds."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _wait_until_accepting(dsn: str, timeout: float) -> None:
    """Poll until the server accepts connections."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                conn.execute("select 1")
                return
        except psycopg.Error as exc:
            if time.monotonic() > deadline:
                raise LocalDbError(f"Postgres did not accept connections in time: {exc}") from exc
            time.sleep(0.1)


def _server_is_fast(dsn: str) -> bool:
    """True if the server runs with fsync off."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute("show fsync").fetchone()
    except psycopg.Error:
        return False
    return row is not None and row[0] == "off"


def _setting(dsn: str, name: str) -> str | None:
    """A server setting (``show``), or None if unreachable."""
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute(sql.SQL("show {}").format(sql.Identifier(name))).fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def _server_version(dsn: str) -> str | None:
    """``server_version`` of the server, or None if unreachable."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            row = conn.execute("show server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None
