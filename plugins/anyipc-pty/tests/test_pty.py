"""What is special about pty://: a real terminal in raw mode, inherited by forked children."""

from __future__ import annotations

import os

import pytest

import anyipc


def test_raw_mode_passes_every_byte_unchanged() -> None:
    # CR, LF, ^C, ^D, ^S, ^Q, ^Z and DEL would be translated, or would act on
    # the terminal, if the line discipline were not in raw mode.
    data = bytes(range(256)) * 16  # 4 KiB: fits in the terminal's buffer with nobody reading yet
    terminal, master = anyipc.pair("pty://")
    with terminal, master:
        terminal.send(data, timeout=10)
        terminal.close()
        assert b"".join(master) == data


def test_cooked_mode_translates_newlines_and_does_not_claim_intact() -> None:
    terminal, master = anyipc.pair("pty://?raw=false")
    with terminal, master:
        assert not master.capabilities.intact
        terminal.send(b"one\ntwo\n", timeout=10)
        terminal.close()
        assert b"".join(master) == b"one\r\ntwo\r\n"


def test_a_forked_child_writes_through_the_inherited_terminal_side() -> None:
    terminal, master = anyipc.pair("pty://")
    pid = os.fork()
    if pid == 0:  # the child: write through its copy of the terminal side, then leave
        status = 1
        try:
            terminal.send(b"from the child\n" * 1000, timeout=10)
            terminal.close()
            status = 0
        finally:
            os._exit(status)
    terminal.close()  # the child's copy is now the only terminal side
    with master:
        assert b"".join(master) == b"from the child\n" * 1000
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_closing_the_master_side_makes_the_sender_fail() -> None:
    terminal, master = anyipc.pair("pty://")
    master.close()
    with terminal, pytest.raises(anyipc.ConnectionLost):
        terminal.send(b"nobody reads this", timeout=10)


def test_a_location_is_refused_before_anything_is_opened() -> None:
    with pytest.raises(anyipc.InvalidAddress, match="takes no location"):
        anyipc.pair("pty://somewhere")
