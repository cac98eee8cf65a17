"""Owner files: the liveness locks that let a queue's next owner reclaim it after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

import anyipc
from anyipc._owner import OwnerLock, lock_path, owner_alive


@pytest.fixture
def path() -> Iterator[str]:
    path = lock_path("test", uuid.uuid4().hex)
    yield path
    assert not os.path.lexists(path), "the owner file was left behind"


def test_a_live_owner_keeps_others_out_and_removes_its_file(path: str) -> None:
    assert owner_alive(path) is None
    lock, inherited = OwnerLock.acquire(path, "thing")
    assert not inherited and owner_alive(path) is True
    with pytest.raises(anyipc.AddressInUse, match="a live process owns it"):
        OwnerLock.acquire(path, "thing")
    lock.release()
    lock.release()
    assert owner_alive(path) is None


def test_the_file_of_a_killed_owner_is_taken_over(path: str) -> None:
    code = (
        "import sys; from anyipc._owner import OwnerLock; OwnerLock.acquire(sys.argv[1], 'x'); "
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    )
    died = subprocess.run([sys.executable, "-c", code, path], check=False)
    assert died.returncode == -9
    assert owner_alive(path) is False
    lock, inherited = OwnerLock.acquire(path, "thing")
    assert inherited, "the dead owner's file is reported, so that its object may be reclaimed"
    lock.release()


def test_a_symlink_is_never_followed(path: str) -> None:
    target = f"{path}.target"
    os.symlink(target, path)
    try:
        with pytest.raises(anyipc.TransportUnavailable, match="owner file"):
            OwnerLock.acquire(path, "thing")
        assert not os.path.lexists(target)
        assert owner_alive(path) is None
    finally:
        os.unlink(path)


def test_names_too_long_for_a_file_are_hashed() -> None:
    short = lock_path("posixmq", "jobs")
    assert short == "/dev/shm/anyipc-posixmq.jobs.owner"
    long = lock_path("posixmq", "x" * 255)
    assert len(os.path.basename(long)) <= 255 and "sha256-" in long
