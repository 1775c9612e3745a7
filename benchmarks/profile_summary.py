"""Group py-spy's collapsed stacks of the worker by where the time goes (the table of
docs/benchmarks.md "Operation overhead").

    .venv/bin/python -m benchmarks.profile_summary DIR/upgrades-*.txt [--workflows N]

Input: ``py-spy record --format raw`` files (``frame;frame;... count`` per line, root first;
``benchmarks.operation_overhead --profile DIR`` writes them). A sample goes to the category of
the innermost frame that belongs to a known part; a sample in a thread of aiosqlite (every
SQLite statement runs there) is "SQLite" whatever its frames. Samples of a thread waiting (the
event loop in epoll, a thread waiting on its queue: py-spy counts some as active) are left out.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

#: (category, pattern of a frame's file), tried from the innermost frame outwards.
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("SQLAlchemy ORM (sessions, unit of work, identity map)", re.compile(r"sqlalchemy/orm/")),
    ("SQLAlchemy Core (compile, execute, results)", re.compile(r"sqlalchemy/")),
    ("aiosqlite hand-off (queue, futures)", re.compile(r"aiosqlite/")),
    ("pydantic validation and serialisation", re.compile(r"pydantic(_core)?/")),
    ("Temporal payload converter", re.compile(r"temporalio/converter|temporalio/contrib/")),
    ("workflow sandbox (imports, restriction proxies)", re.compile(r"workflow_sandbox/")),
    ("Temporal core bridge (activations, completions)", re.compile(r"temporalio/bridge/")),
    ("Temporal worker, Python side", re.compile(r"temporalio/")),
    (
        "product code (workflows, activities, lifecycle)",
        re.compile(r"/(workflows|activities|lifecycle)/"),
    ),
    ("asyncio loop", re.compile(r"asyncio/")),
]
SQLITE = "SQLite statements (aiosqlite's threads)"
OTHER = "other"
#: Samples py-spy took as active though the thread waits: the event loop in epoll, a thread
#: pool or aiosqlite thread waiting on its queue, a thread without Python frames.
IDLE = "idle (waiting on epoll or a queue)"
IDLE_LEAVES = re.compile(
    r"selectors\.py|threading\.py|queue\.py|concurrent/futures/thread\.py:81\)|"
    r"aiosqlite/core\.py:59\)"
)
#: py-spy's sampling rate in ``benchmarks.harness.py_spy``.
SAMPLES_PER_SECOND = 100
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(:\d+)?\)$")


def categorise(stack: list[str]) -> str:
    """The category of one sample, ``stack`` root first."""
    if not stack or not stack[-1] or IDLE_LEAVES.search(stack[-1]):
        return IDLE
    files = [m.group("file") if (m := FRAME.match(f)) else f for f in stack]
    if any("aiosqlite/core.py" in f for f in files[:4]) and any(
        "threading.py" in f for f in files[:2]
    ):
        return SQLITE
    for file in reversed(files):
        for name, pattern in CATEGORIES:
            if pattern.search(file):
                return name
    return OTHER


def summarise(paths: list[Path]) -> tuple[Counter[str], int]:
    """Samples per category over ``paths``, and the total."""
    counts: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if stack and n.isdigit():
                counts[categorise(stack.split(";"))] += int(n)
    return counts, sum(counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument(
        "--workflows", type=int, help="workflows the samples cover: adds ms per workflow"
    )
    args = parser.parse_args()
    counts, total = summarise(args.files)
    idle = counts.pop(IDLE, 0)
    busy = total - idle
    print(f"{total} samples, {idle} of them idle; shares of the {busy} busy ones:\n")
    per = args.workflows
    unit = f" | ms per workflow ({per})" if per else ""
    print(f"| Where the benchmark process spends its busy time | share{unit} |")
    print("|---|---:" + ("|---:|" if per else "|"))
    for name, n in [*counts.most_common(), ("busy", busy)]:
        ms = f" | {n * 1000 / SAMPLES_PER_SECOND / per:.1f}" if per else ""
        print(f"| {name} | {100 * n / busy:.1f}%{ms} |")


if __name__ == "__main__":
    main()
