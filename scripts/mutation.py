"""Mutation testing of the riskiest modules: ``make mutation`` (not part of ``make test``).

Each mutant is one small change of one module (a comparison flipped, a constant moved by
one, ``and`` for ``or``, ``min`` for ``max``, a call statement dropped, ...). For each,
the module's package tests run against a private copy of the source trees, put first on
``PYTHONPATH`` (the workspace installs its packages as plain path entries, which that
shadows): the mutant is killed when a test fails, or when the run exceeds its time bound
(a mutant that makes a loop spin), and survives when every test passes.

A small runner of our own rather than mutmut: mutmut 3 runs the tests in-process from a
``mutants/`` copy through trampolines, while ours start subprocesses (nx-27017, uvicorn
in the SIGKILL test) that import the workspace packages by path; a copy of the source
trees first on ``PYTHONPATH`` is seen by both, with no change to the test layout.

Only the tests that run the mutated statement run for a mutant (a survivor otherwise costs a
full run of every file, minutes each): once per module, its tests run under coverage with a
context per test (pytest-cov's ``--cov-context=test``), which maps each line of the module to the
node ids that executed it in setup, call or teardown. A mutant runs ``pytest -x`` on the node ids
that executed any line of its innermost statement (a superset of those reaching the mutated
expression). It falls back to the module's whole test list when a line of that statement ran
outside any test (import time: module level, class bodies, ``def`` lines) or when no test context
reached it (code run only in a subprocess). The tests that start the service in a subprocess
(``SUBPROCESS_TESTS``; coverage of the parent does not see the child, and a SIGKILLed child saves
none) are added to every selection, so no test that may execute the line is left out.

Usage: ``python scripts/mutation.py [--module SUBSTRING ...] [--line N ...] [--jobs N] [--list]``.
Writes ``.mutation/results.jsonl`` (``--out``; one line per mutant) and prints the score per module
and in total, with each survivor.
"""

import argparse
import ast
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import coverage

ROOT = Path(__file__).resolve().parent.parent
SOURCE_TREES = ("libs/src", "analytics-service/src")
# Copied with the sources: a run sees the tests as they were when it started.
TEST_TREES = ("libs/tests", "analytics-service/tests")
ANALYTICS_TESTS = [  # fast killers first: the run stops at the first failure
    "analytics-service/tests/test_projection_edges.py",
    "analytics-service/tests/test_reads.py",
    "analytics-service/tests/test_goal_events.py",
    "analytics-service/tests/test_calendar_edges.py",
    "analytics-service/tests/test_consumer.py",
    "analytics-service/tests/test_properties.py",
    "analytics-service/tests/test_rebuild.py",
    "analytics-service/tests/test_process.py",
    # A mutant runs only the tests that executed its line, so these two cost one coverage
    # run more: their reads and projections go through both modules.
    "analytics-service/tests/test_freshness.py",
    "analytics-service/tests/test_streak_store_property.py",
]
TARGETS: dict[str, list[str]] = {
    # The pure engine: its own tests (a property against a reference recomputing every day)
    # and those of the projection and reads built on it; the rest of the suite adds minutes
    # per surviving mutant on the shared machine and nothing streak-rule-specific.
    "libs/src/momentum_libs/streak_rules.py": [
        "analytics-service/tests/test_streak_rules.py",
        "analytics-service/tests/test_streak_store_property.py",
        "analytics-service/tests/test_projection_edges.py",
        "analytics-service/tests/test_reads.py",
    ],
    "analytics-service/src/momentum_analytics/reads/service.py": ANALYTICS_TESTS,
    "analytics-service/src/momentum_analytics/projections/service.py": ANALYTICS_TESTS,
    "libs/src/momentum_libs/outbox.py": ["libs/tests/test_outbox.py", "libs/tests/test_tracing.py"],
    "libs/src/momentum_libs/relay.py": [
        "libs/tests/test_outbox.py",
        "libs/tests/test_relay_once.py",
        "libs/tests/test_metrics.py",
        "libs/tests/test_tracing.py",
    ],
    # test_retention.py: the trimmed-unread repair, and the consumer on a Redis 6.2.
    "libs/src/momentum_libs/consumer.py": [
        "libs/tests/test_consumer.py",
        "libs/tests/test_retention.py",
    ],
}
# Tests whose subprocess imports the module under test: run with every mutant (see above).
SUBPROCESS_TESTS = [
    "analytics-service/tests/test_rebuild.py::test_rebuild_of_three_years_equals_the_live_projection",
    "analytics-service/tests/test_process.py::test_sigkill_mid_burst_loses_nothing_and_counts_nothing_twice",
]
RESULTS = ROOT / ".mutation" / "results.jsonl"
# Each process's address space, set on the runner and so inherited by every test run: a
# mutant that loops appending (a month counter that never wraps) otherwise grows until the
# machine swaps, long before its timeout. The analytics tests pass under it (prlimit).
MEMORY_LIMIT_BYTES = 4 * 2**30
# Calls whose removal or change only alters what is logged: not behaviour under test.
NOT_MUTATED_CALLS = {"log", "logger", "structlog"}

FLIPPED_COMPARISONS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
SWAPPED_OPERATORS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}
SWAPPED_CALLS = {"min": "max", "max": "min", "any": "all", "all": "any"}


@dataclass(frozen=True)
class Mutant:
    module: str
    number: int
    line: int
    statement: tuple[int, int]  # first and last line of the innermost statement around it
    description: str
    source: str  # the whole mutated module


def _logging_call(node: ast.AST) -> bool:
    if isinstance(node, ast.Expr):  # the statement too: dropping it only drops a log line
        node = node.value
    if isinstance(node, ast.Await):
        node = node.value
    if not isinstance(node, ast.Call):
        return False
    target = node.func
    while isinstance(target, ast.Attribute):
        target = target.value
    return isinstance(target, ast.Name) and target.id in NOT_MUTATED_CALLS


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """Ids of nodes never mutated: docstrings, annotations, asserts, argument defaults,
    logging calls, and everything under them."""
    roots: list[ast.AST] = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            first = body[0].value
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                roots.append(body[0])
        if isinstance(node, ast.Assert) or _logging_call(node):
            roots.append(node)
        if isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.returns is not None:
                roots.append(node.returns)
            roots.extend(node.args.defaults)
            roots.extend(d for d in node.args.kw_defaults if d is not None)
            roots.extend(node.decorator_list)
    return {id(child) for root in roots for child in ast.walk(root)}


def _variants(node: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Each mutated copy of ``node`` alone (its children untouched), with a description."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            flipped = FLIPPED_COMPARISONS.get(type(op))
            if flipped is not None:
                ops = list(node.ops)
                ops[i] = flipped()
                yield (
                    ast.Compare(node.left, ops, node.comparators),
                    f"{type(op).__name__} -> {flipped.__name__}",
                )
    elif isinstance(node, ast.BinOp) and type(node.op) in SWAPPED_OPERATORS:
        swapped = SWAPPED_OPERATORS[type(node.op)]
        yield (
            ast.BinOp(node.left, swapped(), node.right),
            f"{type(node.op).__name__} -> {swapped.__name__}",
        )
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield ast.BoolOp(other, node.values), f"{type(node.op).__name__} -> {type(other).__name__}"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield node.operand, "not removed"
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield ast.Constant(not node.value), f"{node.value} -> {not node.value}"
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield ast.Constant(node.value + 1), f"{node.value} -> {node.value + 1}"
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        other_name = SWAPPED_CALLS.get(node.func.id)
        if other_name is not None:
            yield (
                ast.Call(ast.Name(other_name, ast.Load()), node.args, node.keywords),
                f"{node.func.id} -> {other_name}",
            )
    elif isinstance(node, ast.AugAssign):
        yield (
            ast.Assign([node.target], node.value, lineno=node.lineno),
            f"{type(node.op).__name__}= -> =",
        )
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call | ast.Await):
        yield ast.Pass(), "call statement removed"
    elif isinstance(node, ast.Continue | ast.Break):
        yield ast.Pass(), f"{type(node).__name__.lower()} removed"


def _replace(source_lines: list[str], node: ast.AST, text: str) -> str:
    """The module with ``node``'s source span replaced by ``text``."""
    start, end = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
    first, last = source_lines[start], source_lines[end]
    head = first.encode()[: node.col_offset].decode()  # type: ignore[attr-defined]
    tail = last.encode()[node.end_col_offset :].decode()  # type: ignore[attr-defined]
    return "".join([*source_lines[:start], head + text + tail, *source_lines[end + 1 :]])


def mutants_of(module: str) -> list[Mutant]:
    source = (ROOT / module).read_text()
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    skipped = _skipped_nodes(tree)
    statement_of: dict[int, ast.stmt] = {}  # id(node) -> its innermost enclosing statement
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            own = child if isinstance(child, ast.stmt) else statement_of.get(id(parent))
            if own is not None:
                statement_of[id(child)] = own
    found: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skipped or not hasattr(node, "lineno"):
            continue
        for variant, description in _variants(node):
            mutated = _replace(lines, node, ast.unparse(variant))
            try:
                compile(mutated, module, "exec")
            except SyntaxError:
                continue
            statement = statement_of[id(node)]
            span = (statement.lineno, statement.end_lineno or statement.lineno)
            found.append(Mutant(module, len(found), node.lineno, span, description, mutated))
    return sorted(found, key=lambda m: (m.line, m.number))


def baseline(module: str, copy: Path) -> tuple[float, dict[int, set[str]]]:
    """Seconds the module's tests take unmutated, and for each line of the module the node ids
    of the tests that executed it ("" for a line run outside any test, e.g. at import)."""
    data_file = copy / ".coverage-mutation"
    rcfile = copy / ".coveragerc-mutation"
    rcfile.write_text(f"[run]\ninclude = {copy / module}\ndata_file = {data_file}\n")
    # A bare --cov: given a file as its source, coverage measures nothing; the rcfile's
    # include narrows it to the module.
    coverage_args = ["--cov", f"--cov-config={rcfile}", "--cov-context=test"]
    started = time.monotonic()
    returncode, output = _run_tests(
        [*_pytest(TARGETS[module]), *coverage_args, "--cov-report="], copy
    )
    if returncode != 0:
        sys.exit(f"the tests fail without any mutant:\n{output[-3000:]}")
    seconds = time.monotonic() - started
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    by_line = data.contexts_by_lineno(str(copy / module))
    data_file.unlink()
    if not by_line:  # every mutant would run everything, slowly and silently
        sys.exit(f"coverage measured no line of {module}")
    # pytest-cov names a context "<node id>|setup", "|run" or "|teardown".
    return seconds, {
        n: {c.rpartition("|")[0] if "|" in c else c for c in cs} for n, cs in by_line.items()
    }


def tests_for(mutant: Mutant, by_line: dict[int, set[str]]) -> list[str]:
    """The node ids that executed the mutant's statement, with the subprocess tests; the
    module's whole list if a line of it ran outside a test or no test reached it."""
    everything = TARGETS[mutant.module]
    first, last = mutant.statement
    contexts = set().union(*(by_line.get(n, set()) for n in range(first, last + 1)))
    if not contexts or "" in contexts:
        return everything
    chosen = contexts | {t for t in SUBPROCESS_TESTS if t.partition("::")[0] in everything}
    order = {path: i for i, path in enumerate(everything)}  # the fast killers still go first
    return sorted(chosen, key=lambda t: (order.get(t.partition("::")[0], len(order)), t))


def _pytest(tests: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-x", "-q", *tests,
    ]  # fmt: skip


_RUNNING: set["subprocess.Popen[str]"] = set()
_STOPPING = threading.Event()
_FAILED = re.compile(r"^FAILED (\S+)", re.MULTILINE)


def _run_tests(command: list[str], copy: Path, timeout_s: float | None = None) -> tuple[int, str]:
    """Run pytest in a process group of its own, so that a timeout or Ctrl-C also stops the
    stores its tests started (nx-27017, redis-server), not only pytest."""
    if _STOPPING.is_set():
        raise KeyboardInterrupt
    proc = subprocess.Popen(
        command, cwd=copy, env=_env(copy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    _RUNNING.add(proc)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, output
    finally:
        _RUNNING.discard(proc)
        if proc.returncode is None:  # a timeout or Ctrl-C here: kill the group, then reap it
            _kill_group(proc)
            proc.communicate()


def _kill_group(proc: "subprocess.Popen[str]") -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _stop_all() -> None:
    """Ctrl-C: no new test run starts, and every running one goes with its stores. Only
    the signal: the worker thread reading a run's output sees it end and reaps it (two
    threads reading one pipe would race)."""
    _STOPPING.set()
    for proc in list(_RUNNING):
        _kill_group(proc)


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(copy / tree) for tree in SOURCE_TREES)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant of the same size and second as the last
    return env


def _fresh_copy() -> Path:
    copy = Path(tempfile.mkdtemp(prefix="momentum-mutant-"))
    for tree in (*SOURCE_TREES, *TEST_TREES):
        shutil.copytree(ROOT / tree, copy / tree, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")  # the pytest configuration
    return copy


def run_mutant(mutant: Mutant, tests: list[str], copy: Path, timeout_s: float) -> dict[str, object]:
    target = copy / mutant.module
    original = target.read_text()
    target.write_text(mutant.source)
    started = time.monotonic()
    killed_by: list[str] = []
    try:
        returncode, output = _run_tests(_pytest(tests), copy, timeout_s)
        status = "killed" if returncode != 0 else "survived"
        # Which test failed: a kill that does not reproduce by hand names its flaky test.
        killed_by = _FAILED.findall(output)
    except subprocess.TimeoutExpired:
        status = "timeout"
    finally:
        target.write_text(original)
    record = asdict(mutant)
    del record["source"]
    record.update(status=status, seconds=round(time.monotonic() - started, 1), tests=len(tests))
    if killed_by:
        record["killed_by"] = killed_by
    return record


def report(records: list[dict[str, object]]) -> None:
    by_module: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_module.setdefault(str(record["module"]), []).append(record)
    total_killed = 0
    for module, rows in by_module.items():
        killed = sum(1 for r in rows if r["status"] != "survived")
        total_killed += killed
        print(f"{module}: {killed}/{len(rows)} killed ({100 * killed / len(rows):.1f} %)")
        for r in rows:
            if r["status"] == "survived":
                print(f"    survived  line {r['line']}: {r['description']}")
    if records:
        print(f"total: {total_killed}/{len(records)} ({100 * total_killed / len(records):.1f} %)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", help="only modules whose path has this")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at the same time")
    parser.add_argument(
        "--line", type=int, action="append", help="only the mutants on this line of the module"
    )
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the results go")
    parser.add_argument("--report", nargs="+", type=Path, help="summarise these results")
    parser.add_argument(
        "--survivors-of", type=Path, help="run only the mutants that survived in these results"
    )
    args = parser.parse_args()
    if args.report:
        report([json.loads(line) for path in args.report for line in path.read_text().splitlines()])
        return 0
    modules = [m for m in TARGETS if not args.module or any(s in m for s in args.module)]
    mutants = [mutant for module in modules for mutant in mutants_of(module)]
    if args.line:
        mutants = [m for m in mutants if m.line in args.line]
    if args.survivors_of:
        survived = {
            (r["module"], r["number"], r["description"])
            for r in map(json.loads, args.survivors_of.read_text().splitlines())
            if r["status"] == "survived"
        }
        mutants = [m for m in mutants if (m.module, m.number, m.description) in survived]
    if not mutants:
        print("mutation: no mutant matches --module, --line and --survivors-of", file=sys.stderr)
        return 1
    modules = sorted({m.module for m in mutants})  # a baseline only where a mutant runs
    if args.list:
        for m in mutants:
            print(f"{m.module}:{m.line}: {m.description}")
        print(f"{len(mutants)} mutants")
        return 0
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    copies = [_fresh_copy() for _ in range(args.jobs)]
    free = list(copies)
    records: list[dict[str, object]] = []
    pool = ThreadPoolExecutor(args.jobs)
    try:
        # The bound stays that of the whole list (under coverage, so a little longer): a
        # mutant that spins is still caught, and a slow selection is never mistaken for one.
        baselines = {module: baseline(module, copies[0]) for module in modules}
        bounds = {module: 3 * seconds + 30 for module, (seconds, _) in baselines.items()}

        def one(mutant: Mutant) -> dict[str, object]:
            copy = free.pop()
            try:
                tests = tests_for(mutant, baselines[mutant.module][1])
                return run_mutant(mutant, tests, copy, bounds[mutant.module])
            finally:
                free.append(copy)

        args.out.parent.mkdir(exist_ok=True)
        with args.out.open("w") as out:
            for record in pool.map(one, mutants):
                records.append(record)
                out.write(json.dumps(record) + "\n")
                out.flush()
                where = f"{record['module']}:{record['line']}"
                print(f"{record['status']:8} {where} {record['description']}", flush=True)
    except KeyboardInterrupt:
        _stop_all()  # before the pool's shutdown, which waits for the mutants it runs
        pool.shutdown(cancel_futures=True)
        sys.exit(f"mutation: interrupted; {len(records)} results are in {args.out}")
    finally:
        pool.shutdown()
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)
    report(records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
