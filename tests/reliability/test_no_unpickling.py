"""Nothing in anyipc turns a peer's bytes into objects by running code: no pickle, ever.

``pickle``, ``marshal`` and ``shelve`` (and the third-party picklers) build
objects that may run code as they load, so a peer that can send bytes
could run code here (the risk multiprocessing's documentation warns of,
and CVE-2022-42919 exploited).  anyipc carries bytes, and its rpc
carries JSON.  The package's source (``core`` and ``transports``) is
parsed and every import and attribute use is checked; the check is shown
to catch each way of writing a load.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = [ROOT / "core", ROOT / "transports"]
UNSAFE_MODULES = frozenset(
    {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"}
)
UNSAFE_NAMES = frozenset({"loads", "load", "Unpickler", "open"})  # what loads, from those modules


def unsafe_uses(source: str, filename: str = "<source>") -> list[str]:
    """Every import of an unsafe module, or use of a loader from one, in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [
                f"{where}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in UNSAFE_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in UNSAFE_MODULES:
                found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in UNSAFE_NAMES:
            if isinstance(node.value, ast.Name) and node.value.id in UNSAFE_MODULES:
                found.append(f"{where}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id == "Unpickler":
            found.append(f"{where}: Unpickler")
        elif isinstance(node, ast.Constant) and node.value in UNSAFE_MODULES:
            found.append(f"{where}: the module name {node.value!r} (a dynamic import?)")
    return found


def _sources() -> list[Path]:
    files = sorted(path for folder in PACKAGE for path in folder.rglob("*.py"))
    assert len(files) > 50, f"the package's source was not found under {ROOT}"
    return files


def test_the_package_never_unpickles() -> None:
    found = [use for path in _sources() for use in unsafe_uses(path.read_text(), str(path))]
    assert not found, "anyipc must never unpickle what a peer sends:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\npickle.loads(data)",
        "import pickle as p",
        "from pickle import loads",
        "from _pickle import Unpickler",
        "import marshal\nmarshal.loads(data)",
        "import shelve",
        "import dill",
        "x = Unpickler(stream).load()",
        "module = importlib.import_module('pickle')",
        "import multiprocessing.connection\nfrom cloudpickle import loads",
    ],
)
def test_the_check_catches_every_way_of_writing_a_load(source: str) -> None:
    assert unsafe_uses(source)
