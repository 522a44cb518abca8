"""``python -m pbxapi COMMAND``: every PBX operation from the command line.

Configuration comes from PBX_API_URL, PBX_API_USER and PBX_API_PASSWORD (without PBX_API_URL:
the simulator that `make run` starts, on SIMULATOR_PORT, default 8089; ``--url``/``--user``
override; the password is best left in the environment, out of shell history and ``ps``).
Requests always go through the product's shared budget in Redis (REDIS_URL, default
redis://127.0.0.1:6379/0; PBX_BUDGET_KEY, default "<REDIS_KEY_PREFIX or wallboard>:pbx-budget";
the product's limits), so a command-line user cannot get the whole installation blocked. When
that Redis cannot be reached the command fails (exit 4) and sends nothing. ``--private-budget``
counts in this process only: against a real PBX it warns and asks first (or needs ``--yes``).
Results are JSON on stdout; errors one line on stderr.

Exit codes: 0 ok · 1 PBX or other error · 2 usage or invalid argument · 3 blocked by the PBX
rate limit · 4 request budget exhausted or unreachable.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pbxapi.budget import PBX_LIMIT, PRIORITIES, Budget, RedisBudget
from pbxapi.client import (
    PBXClient,
    budget_from_env,
    client_options_from_env,
    redacted_url,
    redis_url_from_env,
)
from pbxapi.errors import (
    Blocked,
    BudgetExhausted,
    BudgetUnavailable,
    InvalidArgument,
    PBXError,
)
from pbxapi.models import PBXModel

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3
EXIT_BUDGET = 4

Handler = Callable[[PBXClient, argparse.Namespace], Any]

PRIVATE_BUDGET_WARNING = (
    "warning: --private-budget: this command's requests are counted in this process only, not "
    "in the budget the wallboard and every other process behind this IP share. Together they "
    f"can exceed the PBX's limit ({PBX_LIMIT[0]} requests per {PBX_LIMIT[1]:g} s), and one "
    "request too many gets the IP blocked for 30 minutes: every board and agent action stops."
)


class UsageError(Exception):
    """A mistake on the command line found after parsing (exit 2)."""


class Cancelled(Exception):
    """The user declined a destructive command (exit 1)."""


# --- command handlers: each returns what is printed as JSON ---


def _queues(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.queues(**_lane(args))


def _queue_status(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.queue_status(args.queue, **_lane(args))


def _calls(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.call_statistics(**_lane(args))


def _extensions(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.extensions(**_lane(args))


def _extension(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.extension(args.extension, **_lane(args))


def _outbounds(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.outbounds(**_lane(args))


def _member(action: str) -> Handler:
    def handler(client: PBXClient, args: argparse.Namespace) -> Any:
        method = getattr(client, f"queue_{action}")
        return method(args.queue, args.extension, **_lane(args))

    return handler


def _cdr_rows(client: PBXClient, args: argparse.Namespace, *, recordings: bool) -> Any:
    dates = {"date_from": args.date_from, "date_to": args.date_to}
    if args.all:
        paged = client.recordings_all if recordings else client.cdr_all
        return paged(**dates, start=args.offset or 0, **_lane(args))
    page = client.recordings if recordings else client.cdr
    return page(**dates, limit=args.limit, offset=args.offset, **_lane(args))


def _cdr(client: PBXClient, args: argparse.Namespace) -> Any:
    return _cdr_rows(client, args, recordings=False)


def _recordings(client: PBXClient, args: argparse.Namespace) -> Any:
    return _cdr_rows(client, args, recordings=True)


def _cdr_get(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.cdr_get(args.id, unique_id=args.unique_id, **_lane(args))


def _download(client: PBXClient, args: argparse.Namespace) -> Any:
    if args.output == "-":
        return client.download_recording(
            args.id, unique_id=args.unique_id, dest=sys.stdout.buffer, **_lane(args)
        )
    return client.download_recording(
        args.id, unique_id=args.unique_id, dest=args.output, **_lane(args)
    )


def _delete_recording(client: PBXClient, args: argparse.Namespace) -> Any:
    what = f"record {args.id}" if args.id is not None else f"call {args.unique_id}"
    _confirm(args, f"Delete the recording of {what}?")
    return client.delete_recording(args.id, unique_id=args.unique_id, **_lane(args))


def _call(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.call_create(args.caller, args.destination, **_lane(args))


def _call_advanced(client: PBXClient, args: argparse.Namespace) -> Any:
    fields: dict[str, str] = {}
    for item in args.field or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--field takes NAME=VALUE, not {item!r}")
        fields[name] = value
    return client.call_advanced(args.profile, **_lane(args), **fields)


def _extension_update(client: PBXClient, args: argparse.Namespace) -> Any:
    forwarding: Any = False if args.no_forward else args.forward
    return client.extension_update(
        args.extension,
        name=args.name,
        call_forwarding=forwarding,
        outboundcid=args.outboundcid,
        **_lane(args),
    )


def _phone_activate(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.viptel_phone_activate(args.extension, **_lane(args))


def _phone_deactivate(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.viptel_phone_deactivate(args.extension, **_lane(args))


def _data_list(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.data_list(**_lane(args))


def _data_set(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.data_create(args.key, args.value, **_lane(args))


def _data_update(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.data_update(args.key, args.value, **_lane(args))


def _data_delete(client: PBXClient, args: argparse.Namespace) -> Any:
    return client.data_delete(args.key, **_lane(args))


def _data_bulk(client: PBXClient, args: argparse.Namespace) -> Any:
    mapping = _read_mapping(args.file)
    return client.data_bulk(mapping, **_lane(args))


def _data_flush(client: PBXClient, args: argparse.Namespace) -> Any:
    _confirm(args, "Remove ALL customer data from the PBX?")
    return client.data_flush(**_lane(args))


def _budget(client: PBXClient, args: argparse.Namespace) -> Any:
    """No PBX request: what the shared budget says right now."""
    budget = client.budget
    usage = budget.usage()
    return {
        "shared": isinstance(budget, RedisBudget),
        "key": budget.key if isinstance(budget, RedisBudget) else None,
        "limit": {"requests": budget.requests, "window": budget.window},
        "used": usage.total,
        "polls": usage.polls,
        "actions": usage.actions,
        "typical_hold": round(usage.hold, 3),
        "blocked_until": budget.blocked_until(),
    }


# --- the parser ---


def _lane(args: argparse.Namespace) -> dict[str, Any]:
    lane: dict[str, Any] = {}
    if getattr(args, "priority", None):
        lane["priority"] = args.priority
    return lane


def _common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command (defaults only on the main parser)."""
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument("--url", default=default, help="PBX base URL (default: $PBX_API_URL)")
    group.add_argument("--user", default=default, help="API user (default: $PBX_API_USER)")
    group.add_argument(
        "--password",
        default=default,
        help="API password; prefer $PBX_API_PASSWORD (the command line is visible to others)",
    )
    group.add_argument(
        "--max-wait",
        type=float,
        default=argparse.SUPPRESS if suppress else 10.0,
        help="seconds to wait for a free request slot in the budget (default 10)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log to stderr: -v warnings, -vv every request (never credentials)",
    )
    group.add_argument(
        "--priority",
        choices=PRIORITIES,
        default=default,
        help="budget lane (default: action for changes, poll for reads; background for "
        "deferrable reads that may borrow the action reserve but never its last slot)",
    )
    group.add_argument(
        "--private-budget",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="DANGEROUS: count requests in this process only instead of the budget in Redis "
        "that the wallboard shares; together they can exceed the PBX's limit and get the IP "
        "blocked for 30 minutes. Against a real PBX it warns and asks (or needs --yes)",
    )
    group.add_argument(
        "-y",
        "--yes",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="answer yes to every question (destructive commands, --private-budget)",
    )
    return common


def _add(
    commands: argparse._SubParsersAction,
    name: str,
    handler: Handler,
    help_text: str,
    common: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
    parser.set_defaults(handler=handler)
    return parser


def _record_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", nargs="?", help="CDR record id")
    parser.add_argument("--unique-id", help="the call's unique_id instead of a record id")


def _cdr_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first day")
    parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last day (inclusive)")
    parser.add_argument("--limit", type=int, help="at most this many rows (PBX cap: 3000)")
    parser.add_argument("--offset", type=int, help="skip this many rows")
    parser.add_argument(
        "--all", action="store_true", help="page past the 3000-row cap until every row is out"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pbxapi",
        description="Every VIPTel PBX API operation from the command line; JSON on stdout.",
        epilog=(
            "Environment: PBX_API_URL, PBX_API_USER, PBX_API_PASSWORD; the shared request "
            "budget: REDIS_URL (default redis://127.0.0.1:6379/0), PBX_BUDGET_KEY (default "
            "<REDIS_KEY_PREFIX or wallboard>:pbx-budget), PBX_BUDGET_REQUESTS/WINDOW, "
            "PBX_ACTION_RESERVE, PBX_BLOCK_SECONDS, PBX_RATE_LIMIT (the PBX's, 20/5), "
            "PBX_BLOCK_FILE; PBX_CONNECT_TIMEOUT, PBX_READ_TIMEOUT, PBX_TIME_ZONE. Every request "
            "goes through the budget the wallboard shares; if its Redis cannot be reached the "
            "command fails and sends nothing. Exit codes: 0 ok, 1 error, 2 usage, 3 blocked, "
            "4 budget exhausted or unreachable."
        ),
        parents=[_common_options(suppress=False)],
    )
    common = _common_options(suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add(commands, "queues", _queues, "list the queues", common)
    sub = _add(commands, "queue-status", _queue_status, "one queue: members, waiting", common)
    sub.add_argument("queue", help="queue number")
    _add(commands, "calls", _calls, "active calls (call statistics)", common)
    _add(commands, "extensions", _extensions, "list the extensions", common)
    sub = _add(commands, "extension", _extension, "one extension", common)
    sub.add_argument("extension", help="extension number")
    _add(commands, "outbounds", _outbounds, "allowed outbound caller-ID numbers", common)

    for action, text in (
        ("pause", "pause an agent in a queue"),
        ("unpause", "unpause an agent in a queue"),
        ("add", "add an agent to a queue"),
        ("remove", "remove an agent from a queue (asks first)"),
    ):
        handler = _member(action)
        if action == "remove":
            handler = _confirmed(handler, "Remove extension {extension} from queue {queue}?")
        sub = _add(commands, action, handler, text, common)
        sub.add_argument("queue", help="queue number")
        sub.add_argument("extension", help="agent's extension number")

    sub = _add(commands, "cdr", _cdr, "call records (CDR)", common)
    _cdr_args(sub)
    sub = _add(commands, "recordings", _recordings, "call records that have a recording", common)
    _cdr_args(sub)
    sub = _add(commands, "cdr-get", _cdr_get, "one call record by id or --unique-id", common)
    _record_args(sub)
    sub = _add(commands, "download", _download, "download a call's recording", common)
    _record_args(sub)
    sub.add_argument("-o", "--output", required=True, help="file to write ('-' = stdout)")
    sub = _add(
        commands,
        "delete-recording",
        _delete_recording,
        "delete a call's recording, keeping the record (asks first)",
        common,
    )
    _record_args(sub)

    sub = _add(commands, "call", _call, "click-to-call: ring CALLER, then dial", common)
    sub.add_argument("caller", help="the extension that rings first")
    sub.add_argument("destination", help="extension or phone number to call")
    sub = _add(commands, "call-advanced", _call_advanced, "a call from an agreed profile", common)
    sub.add_argument("profile", nargs="?", help="the agreed profile name")
    sub.add_argument("--field", action="append", metavar="NAME=VALUE", help="agreed form field")

    sub = _add(commands, "extension-update", _extension_update, "change an extension", common)
    sub.add_argument("extension", help="extension number")
    sub.add_argument("--name", help="new name (letters, digits and spaces)")
    forwarding = sub.add_mutually_exclusive_group()
    forwarding.add_argument("--forward", metavar="NUMBER", help="forward calls to NUMBER")
    forwarding.add_argument("--no-forward", action="store_true", help="switch forwarding off")
    sub.add_argument("--outboundcid", help="caller ID shown (one of `outbounds`)")
    sub = _add(commands, "phone-activate", _phone_activate, "activate VIPTel Phone", common)
    sub.add_argument("extension", help="extension number")
    sub = _add(commands, "phone-deactivate", _phone_deactivate, "deactivate VIPTel Phone", common)
    sub.add_argument("extension", help="extension number")

    _add(commands, "data-list", _data_list, "all customer data (key → value)", common)
    sub = _add(commands, "data-set", _data_set, "create a customer data key", common)
    sub.add_argument("key", help="key (at most 250 characters, case-sensitive)")
    sub.add_argument("value", help="value (any text, may be empty)")
    sub = _add(commands, "data-update", _data_update, "change a customer data value", common)
    sub.add_argument("key")
    sub.add_argument("value")
    sub = _add(commands, "data-delete", _data_delete, "delete a customer data key", common)
    sub.add_argument("key")
    sub = _add(
        commands, "data-bulk", _data_bulk, "create/update many keys from a JSON object", common
    )
    sub.add_argument("file", help='JSON file {"key": "value", ...} (\'-\' = stdin)')
    _add(commands, "data-flush", _data_flush, "remove ALL customer data (asks)", common)

    _add(commands, "budget", _budget, "the request budget now (sends no request)", common)
    return parser


# --- running a command ---


def _confirmed(handler: Handler, question: str) -> Handler:
    def wrapped(client: PBXClient, args: argparse.Namespace) -> Any:
        _confirm(args, question.format(**vars(args)))
        return handler(client, args)

    return wrapped


def _confirm(args: argparse.Namespace, question: str) -> None:
    """Destructive commands: --yes, or a "y" typed at a terminal. Never guess from a pipe."""
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{args.command} is destructive: add --yes to confirm (no terminal)")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Cancelled("Cancelled, nothing was changed")


def _make_budget(args: argparse.Namespace, environ: dict[str, str], *, real_pbx: bool) -> Budget:
    """The shared budget; a private one only on --private-budget, never silently against a
    real PBX."""
    if not args.private_budget:
        return budget_from_env(environ)
    if real_pbx:
        print(PRIVATE_BUDGET_WARNING, file=sys.stderr)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UsageError("--private-budget against a real PBX needs --yes (no terminal)")
            answer = input("Send without the shared budget? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                raise Cancelled("Cancelled, nothing was sent")
    return budget_from_env(environ, private=True)


def _read_mapping(path: str) -> dict[str, Any]:
    try:
        if path == "-":
            payload = json.load(sys.stdin)
        else:
            with open(path, encoding="utf-8") as handle:
                payload = json.load(handle)
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(payload, dict):
        raise UsageError(f'{path} must hold one JSON object: {{"key": "value", ...}}')
    return payload


def _make_client(args: argparse.Namespace, environ: dict[str, str]) -> PBXClient:
    url = args.url or environ.get("PBX_API_URL", "")
    user = args.user or environ.get("PBX_API_USER", "")
    password = args.password or environ.get("PBX_API_PASSWORD", "")
    real_pbx = bool(url)
    if not url:
        # Like the product: with no PBX configured, talk to the simulator that `make run` starts,
        # with the same defaults as wallboard/settings.py.
        host = environ.get("SIMULATOR_HOST") or "127.0.0.1"
        url = f"http://{host}:{environ.get('SIMULATOR_PORT') or 8089}/"
        user = user or environ.get("SIMULATOR_USER") or "wallboard"
        password = password or environ.get("SIMULATOR_SECRET") or "simulator"
        print(f"note: PBX_API_URL is not set; using the simulator at {url}", file=sys.stderr)
    if not user:
        raise UsageError("No API user: set PBX_API_USER or pass --user")
    if not password and args.command != "budget":
        if not sys.stdin.isatty():
            raise UsageError("No API password: set PBX_API_PASSWORD")
        password = getpass.getpass("PBX API password: ")
    options = client_options_from_env(environ)
    budget = _make_budget(args, environ, real_pbx=real_pbx)
    return PBXClient(url, user, password, budget=budget, max_wait=args.max_wait, **options)


def _jsonable(value: Any) -> Any:
    if isinstance(value, PBXModel):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _write_json(result: Any, out: TextIO) -> None:
    if result is None:
        return
    if hasattr(result, "__next__"):  # a paged generator: stream rows, never hold them all
        out.write("[")
        for index, row in enumerate(result):
            out.write(",\n  " if index else "\n  ")
            out.write(json.dumps(_jsonable(row), ensure_ascii=False))
        out.write("\n]\n")
        return
    json.dump(_jsonable(result), out, ensure_ascii=False, indent=2)
    out.write("\n")


def _configure_logging(verbosity: int) -> None:
    # Quiet by default: the one-line error on stderr is the whole story.
    level = {0: logging.CRITICAL + 1, 1: logging.WARNING}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    env = dict(os.environ if environ is None else environ)
    try:
        client = _make_client(args, env)
        with client:
            result = args.handler(client, args)
            if args.command == "download" and args.output == "-":
                return EXIT_OK  # the bytes went to stdout
            _write_json(result, sys.stdout)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except Cancelled as exc:
        return _fail(str(exc), EXIT_ERROR)
    except InvalidArgument as exc:
        return _fail(str(exc), EXIT_USAGE)
    except Blocked as exc:
        return _fail(str(exc), EXIT_BLOCKED)
    except BudgetExhausted as exc:
        return _fail(str(exc), EXIT_BUDGET)
    except BudgetUnavailable as exc:
        url = redacted_url(redis_url_from_env(env))
        return _fail(
            f"{exc} at {url} (REDIS_URL). Nothing was sent: without the shared budget this "
            "command could get the PBX to block every process behind this IP. Start Redis or "
            "point REDIS_URL at the product's (--private-budget only if you must).",
            EXIT_BUDGET,
        )
    except PBXError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except ValueError as exc:  # e.g. a malformed number in the environment
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("Interrupted", EXIT_ERROR)
    except BrokenPipeError:
        # The reader (`| head`) left early; the request is done, there is nothing to report.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK
