"""The ``videogen`` command line.

Each top-level command is one ``add_<name>_commands(subparsers)`` function listed in
:data:`COMMAND_GROUPS`; it registers its parser and sets ``handler`` on it (or on its own
sub-commands). A handler takes the parsed arguments and returns an exit code. Heavy
imports stay inside handlers so ``videogen --help`` is instant.

    videogen db up       start the embedded Postgres and apply pending migrations
    videogen db down     stop the embedded Postgres
    videogen db reset    recreate the database: platform stand-in, migrations, seed
    videogen db url      print the database URL
    videogen db status   show where the database is and whether it runs
    videogen migration draft <name>   draft supabase/migrations/<timestamp>_<name>.sql
    videogen logs [service]   the stack's logs, one line per event (follows; --no-follow, -n)
    videogen scheduler   run private.schedules where pg_cron does not (`videogen up` starts it)
    videogen audit       check every account's ledger and reservations; exit 1 on differences
    videogen admin grant <email>    make a user an admin (app_metadata.role in new tokens)
    videogen admin revoke <email>   take it back
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

Handler = Callable[[argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction is private; typed loosely on purpose


# ------------------------------------------------------------------------------------------
# db
# ------------------------------------------------------------------------------------------


def db_up(args: argparse.Namespace) -> int:
    """Start the embedded Postgres (if local) and apply what is pending."""
    from videogen_dev import localdb, migrations

    dsn = localdb.ensure_running()
    if not args.no_migrate:
        applied = migrations.apply_all(dsn)
        for name in applied:
            print(f"applied {name}")
        if not applied:
            print("database up to date")
    print(dsn if localdb.external_database_url() is None else localdb.redact(dsn))
    return 0


def db_down(args: argparse.Namespace) -> int:
    """Stop the embedded Postgres."""
    from videogen_dev import localdb

    if localdb.external_database_url() is not None:
        print("DATABASE_URL points to another server; nothing to stop")
    elif localdb.stop():
        print("embedded Postgres stopped")
    else:
        print("embedded Postgres was not running")
    return 0


def db_reset(args: argparse.Namespace) -> int:
    """Drop and recreate the database, then apply platform, migrations and seed (ending the
    local Realtime's replication readers first: Postgres will not drop a database in use
    by a replication slot)."""
    from videogen_dev import localdb, migrations

    external = localdb.external_database_url()
    if external is not None and not args.yes:
        print(
            f"refusing to reset {localdb.redact(external)} without --yes "
            "(DATABASE_URL points to another server)",
            file=sys.stderr,
        )
        return 2
    dsn = localdb.ensure_running()
    released = migrations.reset(dsn)
    for line in released:
        print(line)
    if released:
        print("(a running dev server's Realtime feed reconnects by itself)")
    for name in migrations.apply_all(dsn, seed=not args.no_seed):
        print(f"applied {name}")
    print("database reset")
    if migrations.pg_cron_stopped(dsn):
        print(
            "pg_cron's scheduler ended with the old database; it starts again with Postgres "
            "(`videogen db down && videogen db up`); until then `videogen up`'s scheduler "
            "runs private.schedules"
        )
    return 0


def db_url(args: argparse.Namespace) -> int:
    """Print the database URL (does not start anything)."""
    from videogen_dev import localdb

    print(localdb.external_database_url() or localdb.local_dsn())
    return 0


def db_status(args: argparse.Namespace) -> int:
    """Print the database status; exit 1 when it is not running."""
    from videogen_dev import localdb

    info = localdb.status()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(key) for key in info)
        for key, value in info.items():
            print(f"{key.ljust(width)}  {'-' if value is None else value}")
    return 0 if info.get("running") else 1


def add_db_commands(subparsers: Subparsers) -> None:
    """Register ``videogen db …``."""
    db = subparsers.add_parser("db", help="the database: embedded Postgres, migrations")
    commands = db.add_subparsers(dest="db_command", metavar="{up,down,reset,url,status}")
    db.set_defaults(handler=_help_of(db))

    up = commands.add_parser("up", help="start the embedded Postgres and apply pending migrations")
    up.add_argument("--no-migrate", action="store_true", help="only start the server")
    up.set_defaults(handler=db_up)

    down = commands.add_parser("down", help="stop the embedded Postgres")
    down.set_defaults(handler=db_down)

    reset = commands.add_parser("reset", help="recreate the database: platform, migrations, seed")
    reset.add_argument("--no-seed", action="store_true", help="skip supabase/seed.sql")
    reset.add_argument(
        "--yes", action="store_true", help="allow resetting a non-local DATABASE_URL"
    )
    reset.set_defaults(handler=db_reset)

    url = commands.add_parser("url", help="print the database URL")
    url.set_defaults(handler=db_url)

    status = commands.add_parser("status", help="show the database status")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=db_status)


# ------------------------------------------------------------------------------------------
# migration
# ------------------------------------------------------------------------------------------


def migration_draft(args: argparse.Namespace) -> int:
    """Draft a migration from sql/schema; 0 when the check finds A + draft equal to B."""
    from videogen_dev.migration_draft import draft_migration

    draft = draft_migration(args.name)
    if draft.path is None:
        print("nothing to draft: supabase/migrations already give the schema in sql/schema")
        return 0
    print(f"wrote {draft.path} ({len(draft.statements)} statements)")
    for statement in draft.unsafe:
        print(f"  unsafe: {statement}")
    if draft.error is not None:
        print(f"draft does not apply: {draft.error}")
        return 1
    if not draft.remaining:
        print("draft verified: equal")
        return 0
    print("draft not verified: pg_dump of A + draft still differs from sql/schema; by hand:")
    print("\n".join(draft.remaining))
    return 1


def add_migration_commands(subparsers: Subparsers) -> None:
    """Register ``videogen migration draft <name>``."""
    cmd = subparsers.add_parser("migration", help="draft a migration from sql/schema")
    commands = cmd.add_subparsers(dest="migration_command", metavar="{draft}")
    cmd.set_defaults(handler=_help_of(cmd))
    draft = commands.add_parser(
        "draft", help="diff migrations against sql/schema into a new migration file"
    )
    draft.add_argument("name", help="lower_snake_case, e.g. add_profile_nickname")
    draft.set_defaults(handler=migration_draft)


# ------------------------------------------------------------------------------------------
# serve, token
# ------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    """Serve the five functions at http://HOST:PORT/functions/v1/<name>."""
    from videogen_dev.devserver import serve as run

    run(args.host, args.port, workers=args.workers, threads=args.threads)
    return 0


def add_serve_commands(subparsers: Subparsers) -> None:
    """Register ``videogen serve``."""
    cmd = subparsers.add_parser("serve", help="serve all five functions (Supabase local layout)")
    cmd.add_argument("--host", default="127.0.0.1")
    cmd.add_argument("--port", type=int, default=54321)
    cmd.add_argument("--workers", type=int, default=None, help="gunicorn processes (WORKERS)")
    cmd.add_argument("--threads", type=int, default=None, help="threads per process (THREADS)")
    cmd.set_defaults(handler=serve)


def token(args: argparse.Namespace) -> int:
    """Create the local user if needed and print an access token for it."""
    from videogen.config import get_settings
    from videogen.kit.auth import issue_access_token
    from videogen_dev.users import ensure_user

    user_id, email = ensure_user(get_settings().database_url, args.user, anonymous=args.anonymous)
    print(
        issue_access_token(
            user_id, email=email, is_anonymous=args.anonymous, expires_in=args.expires_in
        )
    )
    return 0


def add_token_commands(subparsers: Subparsers) -> None:
    """Register ``videogen token``."""
    cmd = subparsers.add_parser("token", help="print a local access token for a user")
    cmd.add_argument("--user", required=True, help="an email or a user uuid")
    cmd.add_argument("--anonymous", action="store_true", help="an anonymous sign-in")
    cmd.add_argument("--expires-in", type=int, default=3600, help="seconds")
    cmd.set_defaults(handler=token)


# ------------------------------------------------------------------------------------------
# up, down, status, demo: the embedded default as a long-running stack
# ------------------------------------------------------------------------------------------


def stack_up(args: argparse.Namespace) -> int:
    """Start database, functions and two reference workers in the background."""
    from videogen_dev import stack

    print(json.dumps(stack.up(), indent=2))
    return 0


def stack_down(args: argparse.Namespace) -> int:
    """Stop the stack (and the embedded database unless --keep-db)."""
    from videogen_dev import stack

    print("stopped: " + (", ".join(stack.down(database=not args.keep_db)) or "nothing"))
    return 0


def stack_status(args: argparse.Namespace) -> int:
    """Show what of the stack runs."""
    from videogen_dev import stack

    print(json.dumps(stack.status(), indent=2, default=str))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Bring the stack up and play a frontend making a generated and a composed video."""
    from videogen_dev import stack

    stack.up()
    result = stack.demo(
        args.prompt,
        duration=args.duration,
        resolution=args.resolution,
        aspect_ratio=args.aspect_ratio,
        topic=args.topic,
    )
    return 0 if all(job["status"] == "completed" for job in result["jobs"]) else 1


def add_stack_commands(subparsers: Subparsers) -> None:
    """Register ``videogen up | down | status | demo``."""
    subparsers.add_parser("up", help="start database, functions and two workers").set_defaults(
        handler=stack_up
    )
    down = subparsers.add_parser("down", help="stop the stack")
    down.add_argument("--keep-db", action="store_true", help="leave the database running")
    down.set_defaults(handler=stack_down)
    subparsers.add_parser("status", help="show what runs").set_defaults(handler=stack_status)
    demo = subparsers.add_parser("demo", help="up, then generate one video as a user would")
    demo.add_argument("--prompt", default="A paper boat sails across a calm blue lake at dawn")
    demo.add_argument("--topic", default="How ocean tides work", help="of the composed video")
    demo.add_argument("--duration", type=int, default=4)
    demo.add_argument("--resolution", default="480p", choices=["480p", "720p", "1080p"])
    demo.add_argument("--aspect-ratio", default="9:16", choices=["16:9", "9:16", "1:1", "4:5"])
    demo.set_defaults(handler=run_demo)


def logs(args: argparse.Namespace) -> int:
    """Show the stack's logs, one line per event (``tail -f`` unless --no-follow)."""
    from videogen_dev import stack
    from videogen_dev.logs import log_files, show

    names = [p.name for p in stack.processes()]
    if args.service and args.service not in names:
        print(f"no service {args.service!r}; one of: {', '.join(names)}", file=sys.stderr)
        return 2
    files = log_files(stack.run_dir(), [args.service] if args.service else names)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends following
        show(files, sys.stdout, lines=args.lines, follow=args.follow)
    return 0


def scheduler(args: argparse.Namespace) -> int:
    """Run the rows of private.schedules where pg_cron does not (foreground)."""
    import logging
    import signal
    import threading

    from videogen.config import get_settings
    from videogen_dev.scheduler import Scheduler

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("videogen.scheduler")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # one line per event (not the CLI's handler as well)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        Scheduler(get_settings().database_url, tick=args.tick).run(stop)
    return 0


def add_logs_commands(subparsers: Subparsers) -> None:
    """Register ``videogen logs [service]`` and ``videogen scheduler``."""
    from videogen_dev.scheduler import TICK_S

    cmd = subparsers.add_parser(
        "logs", help="the stack's logs, one line per event, heartbeats summed up (tail -f)"
    )
    cmd.add_argument(
        "service", nargs="?", help="functions, worker-1, worker-2 or scheduler (default: all)"
    )
    cmd.add_argument("-n", "--lines", type=int, default=20, help="how many lines first")
    cmd.add_argument(
        "--follow", action=argparse.BooleanOptionalAction, default=True,
        help="keep printing what comes (default), or stop at the end (--no-follow)",
    )  # fmt: skip
    cmd.set_defaults(handler=logs)
    sched = subparsers.add_parser(
        "scheduler", help="run private.schedules where pg_cron does not (`up` starts it)"
    )
    sched.add_argument("--tick", type=float, default=TICK_S, help="seconds between reads")
    sched.set_defaults(handler=scheduler)


def build_function(args: argparse.Namespace) -> int:
    """Write build/<name>: main.py, the videogen package, pinned requirements."""
    from videogen_dev.build import build

    print(build(args.name))
    return 0


def env_file(args: argparse.Namespace) -> int:
    """Print the YAML for `gcloud … --env-vars-file`: the settings this environment sets.

    Secrets are not written (they belong in Secret Manager); their names are listed as the
    ``--set-secrets`` flag to pass.
    """
    import yaml
    from pydantic import SecretStr

    from videogen.config import Settings

    settings = Settings()
    plain: dict[str, str] = {}
    secrets: list[str] = []
    for name in sorted(settings.model_fields_set):
        info = Settings.model_fields[name]
        alias = info.alias or name.upper()
        value = getattr(settings, name)
        if isinstance(value, SecretStr) or alias == "DATABASE_URL":  # the URL holds a password
            secrets.append(alias)
        elif value is not None:
            plain[alias] = str(value)
    plain.setdefault("VIDEOGEN_ENV", settings.environment)
    print(yaml.safe_dump(plain, sort_keys=True), end="")
    if secrets:
        flag = ",".join(f"{s}={s.lower().replace('_', '-')}:latest" for s in secrets)
        print(f"# secrets, not written here: --set-secrets={flag}")
    return 0


def keys(args: argparse.Namespace) -> int:
    """Print the local project's URL and keys, as `supabase status` does (local only)."""
    from videogen.config import get_settings

    settings = get_settings()
    if not settings.is_local:
        print("videogen keys prints only local keys (VIDEOGEN_ENV is production)", file=sys.stderr)
        return 1
    values = {
        "api_url": settings.supabase_url,
        "functions_url": settings.functions_url,
        "publishable_key": settings.publishable_key.get_secret_value(),
        "secret_key": settings.secret_key.get_secret_value(),
        "anon_key": settings.anon_key.get_secret_value(),
        "service_role_key": settings.service_role_key.get_secret_value(),
        "cron_secret": settings.cron_secret.get_secret_value(),
        "webhook_secret": settings.webhook_secret_list()[0],
        "database_url": settings.database_url,
    }
    if args.name:
        print(values[args.name])
    else:
        print(json.dumps(values, indent=2))
    return 0


def add_build_commands(subparsers: Subparsers) -> None:
    """Register ``videogen build``, ``env-file`` and ``keys``."""
    cmd = subparsers.add_parser("build", help="write a deployable folder for one function")
    cmd.add_argument("name", help="e.g. generate-video")
    cmd.set_defaults(handler=build_function)
    env = subparsers.add_parser(
        "env-file", help="print the --env-vars-file YAML for a deploy (no secrets)"
    )
    env.set_defaults(handler=env_file)
    show = subparsers.add_parser("keys", help="print the local URL and keys (supabase status)")
    show.add_argument(
        "name",
        nargs="?",
        choices=[
            "api_url",
            "functions_url",
            "publishable_key",
            "secret_key",
            "anon_key",
            "service_role_key",
            "cron_secret",
            "webhook_secret",
            "database_url",
        ],
        help="print just this one",
    )
    show.set_defaults(handler=keys)


# ------------------------------------------------------------------------------------------
# openapi
# ------------------------------------------------------------------------------------------


def openapi(args: argparse.Namespace) -> int:
    """Write openapi.yaml from the code, or with --check exit 1 when they disagree."""
    from pathlib import Path

    from videogen_dev import openapi as doc

    path = Path(args.output) if args.output else doc.default_path()
    if args.check:
        if doc.check(path):
            print(f"{path} is up to date")
            return 0
        print(f"{path} differs from the code; run `videogen openapi`", file=sys.stderr)
        return 1
    print(f"wrote {doc.write(path)}")
    return 0


def add_openapi_commands(subparsers: Subparsers) -> None:
    """Register ``videogen openapi``."""
    cmd = subparsers.add_parser("openapi", help="write (or --check) openapi.yaml from the code")
    cmd.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    cmd.add_argument("--output", help="another path than openapi.yaml at the project root")
    cmd.set_defaults(handler=openapi)


# ------------------------------------------------------------------------------------------
# audit
# ------------------------------------------------------------------------------------------


def audit(args: argparse.Namespace) -> int:
    """Run the money audit on DATABASE_URL; print its differences; 1 when there are any."""
    from rich.console import Console
    from rich.table import Table

    from videogen.config import get_settings
    from videogen.db.connection import PostgresDatabase
    from videogen.services import ops

    settings = get_settings()
    grace = settings.audit_grace_s if args.grace is None else args.grace
    db = PostgresDatabase(settings.database_url, min_size=0, max_size=1)
    try:
        rows = ops.audit(db, grace)
    finally:
        db.close()
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return 1 if rows else 0
    console = Console()
    if not rows:
        console.print("money audit: the books balance (no differences)")
        return 0
    table = Table(title=f"money audit: {len(rows)} difference(s)")
    for column in ("check", "user", "job", "expected", "actual", "detail"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            r.check_name,
            str(r.user_id or "-"),
            str(r.job_id or "-"),
            "-" if r.expected is None else str(r.expected),
            "-" if r.actual is None else str(r.actual),
            r.detail,
        )
    console.print(table)
    return 1


def add_audit_commands(subparsers: Subparsers) -> None:
    """Register ``videogen audit``."""
    cmd = subparsers.add_parser(
        "audit", help="check every account's ledger and reservations (exit 1 on differences)"
    )
    cmd.add_argument(
        "--grace",
        type=int,
        default=None,
        help="seconds past a lease before a held reservation is stale (AUDIT_GRACE_SECONDS)",
    )
    cmd.add_argument("--json", action="store_true", help="machine-readable output")
    cmd.set_defaults(handler=audit)


# ------------------------------------------------------------------------------------------
# admin
# ------------------------------------------------------------------------------------------


def admin_grant(args: argparse.Namespace) -> int:
    """Set (or remove) app_metadata.role = admin on a user of DATABASE_URL's auth.users."""
    from videogen.config import get_settings
    from videogen_dev.users import set_admin

    granted = args.admin_command == "grant"
    user_id = set_admin(get_settings().database_url, args.email, admin=granted)
    verb = "is now an admin" if granted else "is no longer an admin"
    print(f"{args.email} ({user_id}) {verb}; tokens issued from now on say so (sign in again)")
    return 0


def add_admin_commands(subparsers: Subparsers) -> None:
    """Register ``videogen admin grant|revoke <email>``."""
    cmd = subparsers.add_parser("admin", help="make a local user an admin, or no longer one")
    commands = cmd.add_subparsers(dest="admin_command", metavar="{grant,revoke}")
    cmd.set_defaults(handler=_help_of(cmd))
    for name, what in (("grant", "make"), ("revoke", "no longer make")):
        sub = commands.add_parser(name, help=f"{what} the user with this email an admin")
        sub.add_argument("email", help="the user's email (auth.users)")
        sub.set_defaults(handler=admin_grant)


# ------------------------------------------------------------------------------------------
# worker
# ------------------------------------------------------------------------------------------


def add_worker_commands(subparsers: Subparsers) -> None:
    """Register ``videogen worker``: the reference worker package's own command line."""
    from videogen_worker.__main__ import add_arguments, run_from_args

    cmd = subparsers.add_parser("worker", help="run the reference GPU worker (renders with ffmpeg)")
    add_arguments(cmd)
    cmd.set_defaults(handler=run_from_args)


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------

#: Top-level command groups, in help order. Add a group by appending its registrar.
COMMAND_GROUPS: list[Callable[[Subparsers], None]] = [
    add_db_commands,
    add_migration_commands,
    add_serve_commands,
    add_token_commands,
    add_stack_commands,
    add_logs_commands,
    add_build_commands,
    add_openapi_commands,
    add_audit_commands,
    add_admin_commands,
    add_worker_commands,
]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, built from :data:`COMMAND_GROUPS`."""
    parser = argparse.ArgumentParser(
        prog="videogen", description="videogen: a Supabase-native video generation backend"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    parser.set_defaults(handler=_help_of(parser))
    for register in COMMAND_GROUPS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used as ``sys.exit`` by the entry point)."""
    import logging

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for known failures, never a stack trace by default
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _help_of(parser: argparse.ArgumentParser) -> Handler:
    """A handler that prints ``parser``'s help (a group called without a sub-command)."""

    def show_help(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return show_help


if __name__ == "__main__":
    sys.exit(main())
