"""`python -m pbxapi` as a user runs it: a subprocess against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pbx_testing import SIM_PASSWORD, SIM_USER

from pbxapi import cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pbxapi", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def env(sim, budget_key) -> dict[str, str]:
    """A user's shell: the simulator as the PBX, the product's shared budget in Redis under this
    test's own key (declared unused: no cold start)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PBX_", "REDIS_"))}
    return {
        **base,
        "PBX_API_URL": sim.url,
        "PBX_API_USER": SIM_USER,
        "PBX_API_PASSWORD": SIM_PASSWORD,
        "PBX_READ_TIMEOUT": "2",
        "REDIS_URL": REDIS_URL,
        "PBX_BUDGET_KEY": budget_key,
    }


def test_queues_prints_json(sim, env):
    result = run("queues", env=env)
    assert result.returncode == 0, result.stderr
    queues = json.loads(result.stdout)
    assert [q["queue"] for q in queues] == sim.centre.queue_numbers()
    assert all(isinstance(q["name"], str) for q in queues)
    assert result.stderr == ""


def test_queue_status_and_cdr_print_normalised_json(sim, env):
    queue = sim.centre.queue_numbers()[0]
    status = json.loads(run("queue-status", str(queue), env=env).stdout)
    assert status["queue"] == queue
    assert isinstance(status["current_calls_count"], int)
    rows = json.loads(run("cdr", "--limit", "2", env=env).stdout)
    assert len(rows) == 2 and rows[0]["when"].endswith(("+01:00", "+02:00"))
    every = json.loads(run("cdr", "--all", env=env).stdout)
    assert len(every) == sim.centre.cdr_count()


def test_a_block_exits_3_and_is_shared_with_the_next_command(sim, env):
    sim.centre.set_fault("forbidden")
    try:
        first = run("queues", env=env)
    finally:
        sim.centre.set_fault(None)
    assert first.returncode == cli.EXIT_BLOCKED
    assert first.stdout == ""
    assert first.stderr.startswith("error: PBX access is blocked")
    assert first.stderr.count("\n") == 1
    sent = len(sim.requests_log)
    second = run("pause", "100", "201", env=env)  # another process, same Redis budget
    assert second.returncode == cli.EXIT_BLOCKED
    assert len(sim.requests_log) == sent  # it never reached the PBX
    budget = json.loads(run("budget", env=env).stdout)
    assert budget["shared"] is True and budget["blocked_until"] > 0


def test_an_exhausted_budget_exits_4(sim, env):
    limited = {**env, "PBX_BUDGET_REQUESTS": "1", "PBX_ACTION_RESERVE": "0"}
    assert run("outbounds", env=limited).returncode == 0
    result = run("outbounds", "--max-wait", "0", env=limited)
    assert result.returncode == cli.EXIT_BUDGET
    assert "next slot in" in result.stderr


def test_destructive_commands_refuse_without_yes_when_not_on_a_terminal(sim, env):
    assert run("data-set", "keep", "me", env=env).returncode == 0
    sent = len(sim.requests_log)
    refused = run("data-flush", env=env)
    assert refused.returncode == cli.EXIT_USAGE
    assert "--yes" in refused.stderr
    assert len(sim.requests_log) == sent
    assert "keep" in sim.centre.data_list()
    done = run("data-flush", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    assert sim.centre.data_list() == {}


def test_remove_asks_on_a_terminal_and_a_no_changes_nothing(sim, budget_key, monkeypatch, capsys):
    queue = sim.centre.queue_numbers()[0]
    extension = sim.centre.members(queue)[0]
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    environ = {
        "PBX_API_URL": sim.url,
        "PBX_API_USER": SIM_USER,
        "PBX_API_PASSWORD": SIM_PASSWORD,
        "PBX_BUDGET_KEY": budget_key,
    }
    code = cli.main(["remove", str(queue), str(extension)], environ)
    assert code == cli.EXIT_ERROR
    assert "Cancelled" in capsys.readouterr().err
    assert extension in sim.centre.members(queue)
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert cli.main(["remove", str(queue), str(extension)], environ) == 0
    assert extension not in sim.centre.members(queue)
    assert cli.main(["add", str(queue), str(extension)], environ) == 0


def test_invalid_arguments_exit_2_without_a_request(sim, env):
    sent = len(sim.requests_log)
    for args in (["queue-status", "abc"], ["data-set", "k" * 251, "v"], ["cdr", "--from", "1.1."]):
        result = run(*args, env=env)
        assert result.returncode == cli.EXIT_USAGE, args
        assert result.stderr.startswith("error: ")
    assert len(sim.requests_log) == sent


def test_pbx_errors_exit_1(env):
    result = run("extension", "99999", env=env)
    assert result.returncode == cli.EXIT_ERROR
    assert result.stderr.startswith("error: Not found")
    refused = run("add", "999", "201", env=env)
    assert refused.returncode == cli.EXIT_ERROR
    assert "No such queue" in refused.stderr


def test_without_a_pbx_url_it_talks_to_the_simulator(sim, env):
    port = sim.url.rstrip("/").rsplit(":", 1)[1]
    simulator_env = {k: v for k, v in env.items() if not k.startswith("PBX_API_")}
    result = run(
        "queues",
        env={
            **simulator_env,
            "SIMULATOR_PORT": port,
            "SIMULATOR_USER": SIM_USER,
            "SIMULATOR_SECRET": SIM_PASSWORD,
        },
    )
    assert result.returncode == 0, result.stderr
    assert [q["queue"] for q in json.loads(result.stdout)] == sim.centre.queue_numbers()
    assert f"simulator at {sim.url}" in result.stderr


def test_missing_password_is_a_usage_error(env):
    no_password = run("queues", env={k: v for k, v in env.items() if k != "PBX_API_PASSWORD"})
    assert no_password.returncode == cli.EXIT_USAGE
    assert "PBX_API_PASSWORD" in no_password.stderr


def test_download_and_data_bulk(sim, env, tmp_path):
    row = json.loads(run("recordings", "--limit", "1", env=env).stdout)[0]
    target = tmp_path / "call.mp3"
    result = run("download", str(row["id"]), "-o", str(target), env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["size"] == target.stat().st_size > 0
    mapping = tmp_path / "data.json"
    mapping.write_text(json.dumps({"x": "1", "y": "Žilina"}), encoding="utf-8")
    assert run("data-bulk", str(mapping), env=env).returncode == 0
    assert json.loads(run("data-list", env=env).stdout) == {"x": "1", "y": "Žilina"}
    assert run("data-bulk", "-", env=env, stdin="[1, 2]").returncode == cli.EXIT_USAGE


def test_help_documents_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "pbxapi", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    expected = {
        "queues", "queue-status", "calls", "extensions", "extension", "outbounds", "pause",
        "unpause", "add", "remove", "cdr", "cdr-get", "recordings", "download",
        "delete-recording", "call", "call-advanced", "extension-update", "phone-activate",
        "phone-deactivate", "data-list", "data-set", "data-update", "data-delete", "data-bulk",
        "data-flush",
    }  # fmt: skip
    assert expected <= set(commands)
    for name in expected:
        assert name in result.stdout
        assert commands[name].format_help().startswith("usage: python -m pbxapi " + name)
    assert "--yes" in commands["data-flush"].format_help()
    assert "--no-forward" in commands["extension-update"].format_help()
    assert "--private-budget" in result.stdout and "DANGEROUS" in result.stdout
    assert "REDIS_URL (default redis://127.0.0.1:6379/0)" in " ".join(result.stdout.split())


# --- the shared budget, and the only way around it ---


def test_every_command_spends_the_products_shared_budget(sim, env, redis_client, budget_key):
    assert run("queues", env=env).returncode == 0
    budget = json.loads(run("budget", env=env).stdout)
    assert budget["shared"] is True and budget["key"] == budget_key
    assert budget["used"] == 1 and budget["limit"] == {"requests": 18, "window": 5.0}
    assert redis_client.zcard(f"{budget_key}:log") == 1
    assert redis_client.zcard(f"{budget_key}:flight") == 0  # released when the answer was read


def test_without_redis_it_fails_and_sends_nothing(sim, env):
    sent = len(sim.requests_log)
    result = run("queues", env={**env, "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"})
    assert result.returncode == cli.EXIT_BUDGET
    assert result.stderr.startswith("error: The shared PBX request budget (Redis) is unavailable")
    assert "redis://:***@127.0.0.1:1/0 (REDIS_URL)" in result.stderr
    assert "--private-budget" in result.stderr and "hunter2" not in result.stderr
    assert len(sim.requests_log) == sent


def test_a_private_budget_against_a_real_pbx_warns_and_needs_a_yes(sim, env):
    sent = len(sim.requests_log)
    refused = run("queues", "--private-budget", env=env)
    assert refused.returncode == cli.EXIT_USAGE
    assert "blocked for 30 minutes" in refused.stderr
    assert "needs --yes" in refused.stderr
    assert len(sim.requests_log) == sent
    confirmed = run("queues", "--private-budget", "--yes", env=env)
    assert confirmed.returncode == 0, confirmed.stderr
    assert confirmed.stderr.startswith("warning: --private-budget")  # never silent
    assert len(sim.requests_log) == sent + 1


def test_a_private_budget_asks_at_a_terminal(sim, env, monkeypatch, capsys):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    sent = len(sim.requests_log)
    assert cli.main(["queues", "--private-budget"], env) == cli.EXIT_ERROR
    assert "Cancelled, nothing was sent" in capsys.readouterr().err
    assert len(sim.requests_log) == sent
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    assert cli.main(["queues", "--private-budget"], env) == 0
    assert len(sim.requests_log) == sent + 1


def test_a_private_budget_for_the_simulator_needs_no_question(sim, env):
    port = sim.url.rstrip("/").rsplit(":", 1)[1]
    simulator_env = {k: v for k, v in env.items() if not k.startswith("PBX_API_")}
    simulator_env.update(
        {"SIMULATOR_PORT": port, "SIMULATOR_USER": SIM_USER, "SIMULATOR_SECRET": SIM_PASSWORD}
    )
    result = run("queues", "--private-budget", env={**simulator_env, "REDIS_URL": "redis://x:1"})
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PBX_BUDGET_REQUESTS", "21", "above the PBX's limit of 20 requests per 5 s"),
        ("PBX_BUDGET_WINDOW", "4.5", "shorter than the PBX's window of 5 s"),
        ("PBX_RATE_LIMIT", "20", "REQUESTS/SECONDS"),
        ("PBX_TIME_ZONE", "Europe/Nowhere", "not a known time zone"),
        ("PBX_ACTION_RESERVE", "18", "must be below PBX_BUDGET_REQUESTS=18"),
    ],
)
def test_bad_limits_are_refused_naming_the_variable(sim, env, variable, value, says):
    sent = len(sim.requests_log)
    result = run("queues", env={**env, variable: value})
    assert result.returncode == cli.EXIT_USAGE
    assert result.stderr.startswith(f"error: {variable}=")
    assert says in result.stderr
    assert len(sim.requests_log) == sent


def test_a_pbx_with_another_limit_allows_another_budget(sim, env):
    """The simulator here allows far more than 20 per 5 s; saying so permits a bigger budget."""
    generous = {**env, "PBX_RATE_LIMIT": "100/5", "PBX_BUDGET_REQUESTS": "30"}
    assert run("queues", env=generous).returncode == 0
    budget = json.loads(run("budget", env=generous).stdout)
    assert budget["limit"] == {"requests": 30, "window": 5.0}


def test_the_cdr_is_in_the_pbxs_time_zone(env):
    rows = json.loads(run("cdr", "--limit", "1", env={**env, "PBX_TIME_ZONE": "UTC"}).stdout)
    assert rows[0]["when"].endswith("+00:00")
