"""The Channel contract that the base class enforces for every transport."""

from __future__ import annotations

import threading
import time
import warnings

import pytest

import anyipc


def test_data_must_be_bytes_like() -> None:
    first, second = anyipc.pair("mem://b")
    with first, second:
        with pytest.raises(TypeError, match="not str"):
            first.send("text")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="bytes-like"):
            first.send(42)  # type: ignore[arg-type]
        first.send(memoryview(b"abcdef")[::2])  # non-contiguous views are copied
        assert second.recv(timeout=1) == b"ace"


@pytest.mark.parametrize("timeout", [-1, float("nan")])
def test_a_bad_timeout_is_a_value_error(timeout: float) -> None:
    first, second = anyipc.pair("mem://t")
    with first, second, pytest.raises(ValueError, match="timeout"):
        second.recv(timeout=timeout)


def test_a_message_too_large_is_refused_before_sending_and_the_channel_goes_on() -> None:
    first, second = anyipc.pair("mem://m?max_message_size=4")
    with first, second:
        with pytest.raises(anyipc.MessageTooLarge, match="5 bytes exceeds .* 4 bytes"):
            first.send(b"12345")
        first.send(b"1234")
        assert second.recv(timeout=1) == b"1234"
        with pytest.raises(anyipc.Timeout):
            second.recv(timeout=0.01)


def test_concurrent_sends_never_interleave_messages() -> None:
    first, second = anyipc.pair("framed+mem://i?boundaries=stream&capacity=1024")
    messages = [bytes([n]) * 3000 for n in range(8)]
    with first, second:
        threads = [threading.Thread(target=first.send, args=(m,)) for m in messages]
        for thread in threads:
            thread.start()
        got = [second.recv(timeout=5) for _ in messages]
        for thread in threads:
            thread.join()
    assert sorted(got) == sorted(messages)


def test_close_from_another_thread_wakes_a_blocked_send() -> None:
    first, second = anyipc.pair("mem://s?capacity=4")
    with second:
        first.send(b"full")
        errors: list[BaseException] = []

        def blocked() -> None:
            try:
                first.send(b"more", timeout=10)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=blocked)
        thread.start()
        time.sleep(0.05)
        first.close()
        thread.join(5)
        assert isinstance(errors[0], anyipc.ChannelClosed)


def test_an_unclosed_channel_warns_when_collected() -> None:
    first, second = anyipc.pair("mem://w")
    second.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del first
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


def test_iteration_ends_at_the_orderly_end() -> None:
    first, second = anyipc.pair("mem://it")
    with second:
        for message in (b"a", b"", b"c"):
            first.send(message)
        first.close()
        assert list(second) == [b"a", b"", b"c"]


def test_an_unsupported_verb_names_the_supported_ones() -> None:
    with pytest.raises(anyipc.NotSupported, match="supports: connect, listen"):
        anyipc.pair("tcp://127.0.0.1:0")
    with pytest.raises(anyipc.NotSupported, match="bind, connect, pair"):
        anyipc.listen("mem://x?connection=connectionless")
