"""The pytest plugin (entry point ``pytest11``): options for the conformance suite.

It imports nothing but pytest, so that installing anyipc never breaks the
pytest runs of projects that lack hypothesis; the suite itself lives in
:mod:`anyipc.testing` and is imported only by tests that use it.

``--anyipc-uri URI`` (repeatable) names the transports that the
``anyipc_uri`` fixture is parametrized over; a bare scheme (``tcp``,
``framed+unix``) means fresh test addresses of that transport.  Without it,
every available installed transport is used.
"""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("anyipc.testing")

#: URI -> its claims in words, filled by the suite's harness fixture
CLAIMS = pytest.StashKey[dict[str, str]]()
#: URI -> the share of a burst that arrived, for transports that may lose (B5)
DELIVERY = pytest.StashKey[dict[str, str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("anyipc", "anyipc conformance suite")
    group.addoption(
        "--anyipc-uri",
        action="append",
        default=[],
        metavar="URI",
        help="a transport URI or scheme to run the conformance suite on (repeatable)",
    )


def _installed_schemes() -> list[str]:
    import anyipc

    return [scheme for scheme, info in anyipc.transports().items() if info.available]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "anyipc_uri" in metafunc.fixturenames:
        uris = metafunc.config.getoption("anyipc_uri") or _installed_schemes()
        metafunc.parametrize("anyipc_uri", uris, scope="class")


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Say which claims the conformance suite held each transport to, and what lossy ones lost."""
    claims = config.stash.get(CLAIMS, {})
    if not claims:
        return
    terminalreporter.section("anyipc conformance: the claims checked")
    for uri, described in claims.items():
        terminalreporter.line(f"{uri}: {described}")
    delivery = config.stash.get(DELIVERY, {})
    if delivery:
        terminalreporter.section("anyipc conformance: delivery by transports that may lose")
        for uri, measured in delivery.items():
            terminalreporter.line(f"{uri}: {measured}")
