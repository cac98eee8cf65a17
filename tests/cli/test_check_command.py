"""``anyipc check``: a round trip with a peer process over every available transport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anyipc._registry import registry


def test_check_passes_and_says_what_it_skipped(run_anyipc: Callable[..., Any]) -> None:
    result = run_anyipc("check", "--rounds", "3", timeout=120)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    rows = {
        line.split()[0]: line.split(None, 1)[1] for line in result.stdout.decode().splitlines()[1:]
    }
    assert rows["mem"].startswith("skipped: in-process only")
    reg = registry()
    assert set(reg.transports()) <= set(rows)
    checked = {name: row for name, row in rows.items() if not row.startswith("skipped")}
    for scheme in {"tcp", "unix"} & set(reg.transports()):
        for name in (scheme, f"framed+{scheme}") if "framed" in reg.layers() else (scheme,):
            assert checked[name].startswith("ok "), checked
            assert checked[name].endswith(" us")
