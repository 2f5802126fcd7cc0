"""Every CLI failure is one `error:` line on stderr with a documented exit code, no traceback; with --json
one JSON object on stdout too. One test per failure in issue 11's list."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import ExitCode, main
from gateway.testing import free_port


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def error_line(self) -> str:
        lines = self.err.strip().splitlines()
        assert lines and lines[-1].startswith("error: "), self.err
        assert "Traceback" not in self.err, self.err
        return lines[-1]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    code = main(list(args))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def one_line_error(r: Run, code: ExitCode) -> str:
    assert r.code == code, (r.code, r.err)
    assert len(r.err.strip().splitlines()) == 1, r.err
    return r.error_line


def sub(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 30) -> Run:
    full_env = {**os.environ, **(env or {})}
    p = subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True,
                       env=full_env, cwd=cwd, timeout=timeout)
    return Run(p.returncode, p.stdout, p.stderr)


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    r = cli(capsys, "--version")
    assert r.code == 0 and r.out.startswith("scim-gateway ") and r.out.split()[1][0].isdigit()


def test_cli_port_in_use_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    db = tmp_path / "gw.db"
    try:
        r = cli(capsys, "--database", str(db), "serve", "--demo", "--port", str(port))
    finally:
        taken.close()
    line = one_line_error(r, ExitCode.LISTEN)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "in use" in line
    assert not db.exists()  # no database, no migration, no demo key before the bind succeeded
    assert "Serving on" not in r.out and "API key" not in r.out


@pytest.mark.parametrize("flag, value, expected", [
    ("--port", "99999", "invalid serve --port=99999"),
    ("--port", "-1", "invalid serve --port=-1"),
    ("--workers", "0", "invalid serve --workers=0"),
])
def test_cli_invalid_port_or_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
                                     expected: str) -> None:
    db = tmp_path / "gw.db"
    line = one_line_error(cli(capsys, "--database", str(db), "serve", flag, value), ExitCode.USAGE)
    assert expected in line
    assert not db.exists()


def test_cli_invalid_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "gw.db"
    line = one_line_error(cli(capsys, "--database", str(db), "serve", "--host", "256.1.1.1", "--port", "0"), ExitCode.LISTEN)
    assert "invalid host '256.1.1.1'" in line
    assert not db.exists()


@pytest.mark.parametrize("variable, value", [
    ("SCIM_GATEWAY_PORT", "abc"),
    ("SCIM_GATEWAY_MAX_PAGE_SIZE", "0"),
    ("SCIM_GATEWAY_LOG_LEVEL", "loud"),
    ("SCIM_GATEWAY_METRICS_ENABLED", "perhaps"),
])
def test_cli_invalid_environment_value_names_the_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    line = one_line_error(cli(capsys, "--database", str(tmp_path / "gw.db"), "tenants", "list"), ExitCode.USAGE)
    assert line.startswith(f"error: invalid {variable}=")


def test_cli_invalid_secret_setting_is_not_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCIM_GATEWAY_METRICS_TOKEN", "")  # empty = unset: fine
    monkeypatch.setenv("SCIM_GATEWAY_SHUTDOWN_GRACE_SECONDS", "-5")
    line = one_line_error(cli(capsys, "--database", str(tmp_path / "gw.db"), "tenants", "list"), ExitCode.USAGE)
    assert "SCIM_GATEWAY_SHUTDOWN_GRACE_SECONDS" in line


def test_cli_unknown_database_scheme_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line_error(cli(capsys, "--database", "mysql://x/y", "migrate"), ExitCode.DATABASE)
    assert "unknown database scheme 'mysql'" in line
    assert list(tmp_path.iterdir()) == []  # no ./mysql:/x/y


def test_cli_not_a_database_fails_without_hanging(tmp_path: Path) -> None:
    bogus = tmp_path / "notdb.txt"
    bogus.write_text("hello, I am not SQLite\n" * 100)
    r = sub("--database", str(bogus), "tenants", "list", timeout=30)  # a hang is a TimeoutExpired here
    line = one_line_error(r, ExitCode.DATABASE)
    assert "is not a SQLite database" in line


def test_cli_missing_parent_directory_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "no" / "such" / "dir" / "gw.db"
    line = one_line_error(cli(capsys, "--database", str(db), "migrate"), ExitCode.DATABASE)
    assert f"directory {db.parent} does not exist" in line
    assert not (tmp_path / "no").exists()


def test_cli_sqlite_url_is_absolute(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    target = tmp_path / "abs.db"
    r = cli(capsys, "--database", f"sqlite://{target}", "migrate")  # sqlite:// + /abs/path = sqlite:///abs/path
    assert r.code == 0, r.err
    assert target.exists() and list(work.iterdir()) == []


def test_cli_malformed_sqlite_url(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    line = one_line_error(cli(capsys, "--database", "sqlite://relative.db", "migrate"), ExitCode.DATABASE)
    assert "sqlite:///absolute/path" in line
    assert list(tmp_path.iterdir()) == []


def test_cli_postgres_without_the_extra(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "gateway.store.postgres", raising=False)
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # what an install without the postgres extra looks like
    r = cli(capsys, "--database", "postgresql://scim@db.invalid/scim", "migrate", "--json")
    line = one_line_error(r, ExitCode.DATABASE)
    assert "pip install 'scim-gateway[postgres]'" in line
    assert json.loads(r.out) == {"error": "database_unavailable", "detail": line.removeprefix("error: ")}


def test_cli_postgres_unreachable_retries_then_one_line() -> None:
    port = free_port()  # nothing listens there
    r = sub("--database", f"postgresql://postgres:hunter2@127.0.0.1:{port}/scim", "migrate",
            env={"SCIM_GATEWAY_DATABASE_CONNECT_TIMEOUT": "1.5", "SCIM_GATEWAY_LOG_JSON": "true"})
    assert r.code == ExitCode.DATABASE
    line = r.error_line
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port}/scim" in line and "retried for 1.5 s" in line
    retries = [json.loads(x) for x in r.err.strip().splitlines()[:-1]]
    assert len(retries) >= 2 and all(e["event"] == "database_unreachable" for e in retries)
    assert [e["attempt"] for e in retries] == list(range(1, len(retries) + 1))
    assert "hunter2" not in r.err + r.out


def test_cli_usage_error_is_one_line_with_json(capsys: pytest.CaptureFixture[str]) -> None:
    r = cli(capsys, "tenants", "create", "--json")  # NAME missing
    line = one_line_error(r, ExitCode.USAGE)
    assert "required: name" in line
    assert json.loads(r.out)["error"] == "usage"


@pytest.mark.parametrize("args", [
    ("keys", "list", "nope"), ("keys", "create", "nope", "--name", "n"), ("keys", "revoke", "nope", "k"),
    ("scim", "enable", "nope"), ("activity", "nope"), ("users", "list", "nope"), ("tenants", "show", "nope"),
    ("tenants", "delete", "nope", "--yes"),
])
def test_cli_unknown_tenant_is_the_same_error_everywhere(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         args: tuple[str, ...]) -> None:
    r = cli(capsys, "--database", str(tmp_path / "gw.db"), *args, "--json")
    assert one_line_error(r, ExitCode.FAILED) == "error: no tenant 'nope'"
    assert json.loads(r.out) == {"error": "not_found", "detail": "no tenant 'nope'"}


def test_cli_internal_error_has_traceback_only_with_debug(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.cli as cli_mod

    async def boom(args: Any, settings: Any, store: Any) -> int:
        raise RuntimeError("kaboom")

    monkeypatch.setitem(cli_mod._COMMANDS, ("migrate", None), boom)
    db = str(tmp_path / "gw.db")
    line = one_line_error(cli(capsys, "--database", db, "migrate"), ExitCode.INTERNAL)
    assert "internal error: RuntimeError: kaboom" in line and "--debug" in line
    r = cli(capsys, "--database", db, "--debug", "migrate")
    assert r.code == ExitCode.INTERNAL and "Traceback" in r.err and r.err.strip().splitlines()[-1].startswith("error: ")


def test_cli_migrate_says_whether_it_applied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "gw.db")
    first = cli(capsys, "--database", db, "migrate", "--json")
    assert first.code == 0 and json.loads(first.out)["applied"] and json.loads(first.out)["version"] >= 2
    again = cli(capsys, "--database", db, "migrate")
    assert again.code == 0 and again.out.startswith("no migrations to apply")


def test_cli_every_option_has_help_with_default_and_env() -> None:
    import argparse

    from gateway.cli import build_parser
    from gateway.settings import env_name

    def walk(parser: argparse.ArgumentParser, path: str) -> Any:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}")
            else:
                yield path, parser, action

    missing = [f"{path}: {a.option_strings or a.dest}" for path, _, a in walk(build_parser(), "scim-gateway")
               if not a.help]
    assert not missing, f"options without help=: {missing}"
    text = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--help"], capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    for setting, default in (("port", "8080"), ("host", "127.0.0.1"), ("workers", "1")):
        assert f"(default: {default}; env {env_name(setting)})" in flat
    top = " ".join(subprocess.run([sys.executable, "-m", "gateway.cli", "--help"], capture_output=True, text=True).stdout.split())
    assert "env SCIM_GATEWAY_DATABASE" in top and "Exit codes:" in top


def test_cli_sso_sign_in_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "gw.db")
    t = json.loads(cli(capsys, "--database", db, "tenants", "create", "Acme", "--scim", "on", "--json").out)
    r = cli(capsys, "--database", db, "sso", "sign-in", t["id"], "--user-name", "x@example.com", "--json")
    assert r.code == ExitCode.REJECTED == 5 and json.loads(r.out)["reason"] == "scim_required_user_not_provisioned"
    assert r.err == ""  # a rejection is an answer, not an error
    usage = cli(capsys, "--database", db, "sso", "sign-in", t["id"])  # --user-name missing
    assert usage.code == ExitCode.USAGE != ExitCode.REJECTED
