"""`python -m pbxapi.simulator`: run the simulated PBX until interrupted."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import datetime, time

from .config import SimulatorConfig
from .server import start_simulator
from .wire import TZ


def parse_start(value: str) -> float:
    """HH:MM today in Bratislava, or a full ISO date-time, as a Unix time."""
    try:
        if len(value) <= 5:
            clock = time.fromisoformat(value)
            today = datetime.now(TZ).date()
            return datetime.combine(today, clock, tzinfo=TZ).timestamp()
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=TZ)).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not HH:MM or an ISO date-time: {value!r}") from None


def non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"not a count of days: {value!r}")
    return number


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m pbxapi.simulator",
        description="A simulated VIPTel PBX REST API over a living call centre.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089, help="0 = any free port")
    parser.add_argument("--user", default=defaults.user, help="Basic auth user")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password", help="Basic auth password (visible in `ps`)")
    secret.add_argument(
        "--password-env", metavar="NAME", help="read the password from this environment variable"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--queues", type=int, default=defaults.queues)
    parser.add_argument("--agents", type=int, default=defaults.agents)
    volume = parser.add_mutually_exclusive_group()
    volume.add_argument(
        "--call-rate",
        type=float,
        default=defaults.call_rate,
        help="average calls per minute per queue over a working day (default %(default)s); per "
        "1.0 the CDR gets about 1,450 rows a working day and 550 a weekend day per queue (a "
        "month of 20 queues at 0.11: about 100,000 rows)",
    )
    volume.add_argument(
        "--calls-per-day",
        type=float,
        metavar="N",
        help="the same as calls a queue gets on an average working day (N / 1440 a minute)",
    )
    parser.add_argument(
        "--flat", action="store_true", help="the average call rate all day, every day (no curve)"
    )
    parser.add_argument(
        "--busy-weekends",
        action="store_true",
        help="Saturdays and Sundays as busy as working days (e.g. for a weekend demo)",
    )
    parser.add_argument("--no-bursts", action="store_true", help="no random surges")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="simulated seconds per real second"
    )
    history = parser.add_mutually_exclusive_group()
    history.add_argument(
        "--history-days",
        type=non_negative,
        default=7,
        metavar="N",
        help="call records of N whole days before today, plus today up to the start "
        "(default %(default)s: a week)",
    )
    history.add_argument("--no-history", action="store_true", help="start with an empty CDR")
    parser.add_argument(
        "--start-at",
        metavar="HH:MM",
        type=parse_start,
        help="start the simulated clock at this Bratislava time today (e.g. a busy 10:00 for a "
        "night-time demo); default: now",
    )
    parser.add_argument("--rate-limit", type=int, default=defaults.rate_limit)
    parser.add_argument("--rate-window", type=float, default=defaults.rate_window)
    parser.add_argument("--block-seconds", type=float, default=defaults.block_seconds)
    parser.add_argument(
        "--no-autopilot", action="store_true", help="a frozen centre that changes only by actions"
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    password = args.password
    if args.password_env:
        password = os.environ.get(args.password_env)
        if not password:
            raise SystemExit(f"environment variable {args.password_env} is empty or not set")
    return SimulatorConfig(
        host=args.host,
        port=args.port,
        user=args.user,
        password=password or SimulatorConfig.password,
        seed=args.seed,
        queues=args.queues,
        agents=args.agents,
        call_rate=args.call_rate if args.calls_per_day is None else args.calls_per_day / 1440,
        daily_curve=not args.flat,
        weekends=not args.busy_weekends,
        bursts=not args.no_bursts,
        speed=args.speed,
        history_days=0 if args.no_history else args.history_days + 1,  # + today
        start_time=args.start_at,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        block_seconds=args.block_seconds,
        autopilot=not args.no_autopilot,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = config_from_args(args)
    sim = start_simulator(config, verbose=args.verbose)
    agents = len(sim.centre.extensions())
    print(
        f"PBX simulator listening on {sim.url} — queues {sim.centre.queue_numbers()}, "
        f"{agents} extensions, user {config.user!r}, seed {config.seed}, speed {config.speed}x, "
        f"limit {config.rate_limit}/{config.rate_window:g}s, "
        f"clock {datetime.fromtimestamp(sim.centre.now(), TZ):%a %H:%M} Bratislava, "
        f"{sim.centre.cdr_count()} call records over {config.history_days} day(s)",
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
