"""The simulator's settings: one frozen dataclass shared by the server, the model and the CLI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything the simulated PBX can be told at start.

    Rates are per simulated time: `speed` makes simulated time run faster than real time (the
    rate limiter always works in real time, like the real PBX).
    """

    host: str = "127.0.0.1"
    port: int = 0  # 0 = an ephemeral port (see SimulatorHandle.url)
    user: str = "wallboard"
    password: str = "wallboard"  # noqa: S105 - the simulator's own default, not a real secret

    seed: int = 1
    queues: int = 4
    agents: int = 16
    # Average calls per minute per queue over a working day (busy hours more, nights less,
    # weekends much less); it scales the history's volume too (see `python -m
    # pbxapi.simulator --help` for rows per day).
    call_rate: float = 0.5
    daily_curve: bool = True  # False: the average rate all day and every day (no curve at all)
    weekends: bool = True  # False: Saturdays and Sundays as busy as working days
    bursts: bool = True  # random surges that make single queues spike and drain
    speed: float = 1.0  # simulated seconds per real second
    start_time: float | None = None  # simulated Unix time at start; None = now
    history_days: int = 1  # days of pre-populated CDR, today included (0 = none)
    warmup_seconds: float = 600.0  # simulated run-in so the board starts mid-flow (autopilot only)
    autopilot: bool = True  # False: the centre changes only through scripting and API actions

    rate_limit: int = 20  # requests per window per client IP
    rate_window: float = 5.0  # seconds, sliding
    block_seconds: float = 1800.0  # 403 for everything from a blocked IP this long

    fault_delay: float = 15.0  # how long the "timeout" fault stalls before answering
    # The "trickle" fault's pause between the bytes of an answer: shorter than any sane read
    # timeout, so the answer never times out, it only takes minutes to arrive.
    fault_trickle_seconds: float = 0.5
    current_calls_count: bool = (
        False  # True: queue/status carries it, as documented (live omits it)
    )
    document_artefacts: bool = False  # True: CDR and extension lists end with a stray "" element
    request_log_size: int = 200_000

    def __post_init__(self) -> None:
        if self.queues < 1 or self.agents < 1:
            raise ValueError("the simulator needs at least one queue and one agent")
        if self.speed <= 0 or self.call_rate < 0:
            raise ValueError("speed must be positive and call_rate not negative")
        if self.fault_delay < 0 or self.fault_trickle_seconds < 0:
            raise ValueError("fault_delay and fault_trickle_seconds must not be negative")
        if self.rate_limit < 1 or self.rate_window <= 0 or self.block_seconds < 0:
            raise ValueError("rate_limit, rate_window and block_seconds must be positive")
