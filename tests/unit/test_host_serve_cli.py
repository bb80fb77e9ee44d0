"""``terminald host serve`` on the test line with a bench terminal (the real link stack,
no daemon): an age question answered from the book given with --ages, the counts at the
end; and its usage errors."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from terminald.backoffice import host_serve
from terminald.cli import main
from terminald.link.keys import TerminalKey
from terminald.link.messages import AgeAnswer
from terminald.sim.line import DEFAULT_BAUD, Line
from terminald.sim.link_bench import bench_terminal
from terminald.store.link_keys import add_terminal_key, init_host_keys

ISSUER = "1a" * 20


@pytest.fixture(autouse=True)
def back_office_today(monkeypatch: pytest.MonkeyPatch) -> None:
    """host serve answers yes/no only about its own date (+-1 day): pin it (BREAK2)."""
    monkeypatch.setattr(host_serve, "today_utc", lambda: date(2020, 2, 29))


def test_serve_answers_an_age_question_from_the_book(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "hostkeys"
    host_public = init_host_keys(keys)
    ages = tmp_path / "ages.toml"
    ages.write_text(f'[[holder]]\nissuer = "{ISSUER}"\nserial = 77\nbirth_date = 2000-02-29\n')
    with Line() as line:
        terminal = bench_terminal(
            line.path("terminal"), 1, host_public, tmp_path, baud=DEFAULT_BAUD, half_duplex=False
        )
        add_terminal_key(keys, TerminalKey(1, terminal.public, "vend"))
        service = terminal.service
        assert service is not None
        service.start()
        codes: list[int] = []
        args = ["host", "--port", line.path("host"), "--keys", str(keys), "--json", "serve"]
        args += ["--ages", str(ages), "--duration", "4", "--partner", "vend=gate-out"]
        serving = threading.Thread(target=lambda: codes.append(main(args)))
        serving.start()
        try:
            deadline = time.monotonic() + 20
            while not service.node.session_up:
                assert time.monotonic() < deadline, "no session"
                time.sleep(0.01)
            answer = service.ask_age(bytes.fromhex(ISSUER), 77, 20, date(2020, 2, 28), 5.0)
            assert answer == AgeAnswer("valid", False)
            answer = service.ask_age(bytes.fromhex(ISSUER), 77, 20, date(2020, 2, 29), 5.0)
            assert answer == AgeAnswer("valid", True)
        finally:
            serving.join(30)
            service.stop()
    assert codes == [0]
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["ok"] is True and result["ages_answered"] == 2
    assert "77 at least 20 on 2020-02-29: valid yes" in captured.err
    assert "2000-02-29" not in captured.err + captured.out  # the birth date never leaves


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--partner", "a=a"], "a terminal cannot be its own partner"),
        (["--partner", "a"], "ENTRY_ID=EXIT_ID"),
        (["--partner", "a=b", "--partner", "b=c"], "b is named in two pairs"),
        (["--address", "9"], "terminal(s) 9 not in"),
        (["--ages", "/nonexistent/ages.toml"], "/nonexistent/ages.toml"),
        (["--heartbeat", "0"], "0.1 to 3600 seconds"),
    ],
)
def test_usage_problems_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    keys = tmp_path / "hostkeys"
    init_host_keys(keys)
    add_terminal_key(keys, TerminalKey(1, bytes(range(32)), "t"))
    args = ["host", "--port", str(tmp_path / "tty"), "--keys", str(keys), "serve", *extra]
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == 2
    assert expected in captured.err and "Traceback" not in captured.err
