"""Import benchmark: a generated CSV through the real pipeline, against a bare COPY of the same file.

It writes a file of `rows` rows (email, name and three custom fields; 2% invalid addresses, 1%
repeats of earlier addresses in another case), starts a real Celery worker on the `imports`
queue, uploads and maps the file as the dashboard does, waits for the worker to finish, checks
every count against what the generator wrote, and samples the worker's memory (its own and its
children's RSS added up, shared pages counted in each) ten times a second. Then it COPYs the
same file into an unindexed table of the same database. It prints:

BENCH import rows=... seconds=... rows_per_s=... copy_rows_per_s=... ratio=... peak_rss_mb=...
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def generate_csv(path: Path, rows: int) -> dict[str, int]:
    """Write the file; return the counts a correct import must report.

    Row i is invalid when i % 50 == 7 (2%); when i % 100 == 13 it repeats, upper-cased, the
    address of row i - 37, which is always a valid row of its own (1%).
    """
    domains = [f"mail{i}.example.com" for i in range(5000)] + ["gmail.com", "outlook.com", "yahoo.co.uk"]
    plans = ["free", "pro", "team", "enterprise"]
    broken = ("person{i}.example.com", "person {i}@example.com", "person{i}@", "@x{i}.com", "person{i}@example..com")
    invalid = duplicates = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("email,name,city,plan,signup_year\n")
        for i in range(rows):
            if i % 50 == 7:
                invalid += 1
                email = broken[i % len(broken)].format(i=i)
            elif i % 100 == 13 and i >= 100:
                duplicates += 1
                j = i - 37
                email = f"person.{j}@{domains[j % len(domains)]}".upper()
            else:
                email = f"person.{i}@{domains[i % len(domains)]}"
            out.write(f"{email},Person {i},City {i % 211},{plans[i % 4]},{2000 + i % 26}\n")
    return {"total": rows, "rejected": invalid, "duplicates": duplicates, "inserted": rows - invalid - duplicates}


class TreeMemory:
    """Samples the RSS of a process and all its descendants; keeps the peak."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kb = 0
        self.peak_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            pids = _tree(self.pid)
            self.peak_kb = max(self.peak_kb, sum(_status_kb(pid, "VmRSS:") for pid in pids))
            # Proportional set size: shared pages divided among the processes sharing them.
            self.peak_pss_kb = max(self.peak_pss_kb, sum(_pss_kb(pid) for pid in pids))


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int, *, with_reaped_children: bool) -> float:
    """CPU time of a process and its live descendants (plus, if asked, the children it has reaped)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields 14-17 of stat (utime, stime, cutime, cstime), counted after the ")" of the name.
        total += int(fields[11]) + int(fields[12])
        if with_reaped_children or member != pid:
            total += int(fields[13]) + int(fields[14])
    return total / ticks


def _postmaster_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _start_worker(log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "--app", "config", "worker", "--queues", "imports"]
    command += ["--concurrency", "1", "--hostname", "bench-imports@%h", "--without-gossip", "--without-mingle"]
    command += ["--loglevel", "INFO"]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"The Celery worker did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)
    return process


def _bare_copy_seconds(path: Path) -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare_copy")
        cursor.execute("CREATE TABLE bench_bare_copy (email text, name text, city text, plan text, signup_year text)")
        started = time.monotonic()
        with cursor.copy("COPY bench_bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy, open(path, "rb") as f:
            while block := f.read(1024 * 1024):
                copy.write(block)
        seconds = time.monotonic() - started
        cursor.execute("DROP TABLE bench_bare_copy")
    return seconds


def run_import_bench(*, rows: int, directory: Path) -> dict:
    """Run the benchmark (Django set up, database migrated); print and return its figures."""
    from accounts.models import User, Workspace
    from subscribers.imports import import_configure, import_counts, import_upload
    from subscribers.models import Import, MailingList

    path = Path(directory) / "import-bench.csv"
    expected = generate_csv(path, rows)
    workspace = Workspace.objects.create(name="Bench", slug="bench")
    mailing_list = MailingList.objects.create(workspace=workspace, name="Everyone")
    user = User.objects.create_user(email="bench@herald.test", password=None)

    load_before = os.getloadavg()
    postmaster = _postmaster_pid()
    worker_cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker = _start_worker(Path(directory) / "worker.log")
    postgres_cpu_before = _cpu_seconds(postmaster, with_reaped_children=True)
    try:
        with TreeMemory(worker.pid) as memory:
            started = time.monotonic()
            with open(path, "rb") as upload:
                imp = import_upload(
                    workspace_id=workspace.pk,
                    actor=user,
                    chunks=iter(lambda: upload.read(1024 * 1024), b""),
                    original_name=path.name,
                    mailing_list=mailing_list,
                )
            import_configure(imp=imp, mapping=imp.mapping)
            while True:
                imp.refresh_from_db()
                if imp.is_finished:
                    break
                if worker.poll() is not None:
                    raise RuntimeError("The worker died during the import.")
                time.sleep(0.05)
            seconds = time.monotonic() - started
            postgres_cpu = _cpu_seconds(postmaster, with_reaped_children=True) - postgres_cpu_before
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (usage.ru_utime - worker_cpu_before.ru_utime) + (usage.ru_stime - worker_cpu_before.ru_stime)
    if imp.status != Import.Status.COMPLETED:
        raise RuntimeError(f"The import ended {imp.status}: {imp.error_message}")
    counts = import_counts(imp)
    wanted = {**expected, "updated": 0, "unchanged": 0, "suppressed_skipped": 0}
    if counts != wanted:
        raise RuntimeError(f"The import's counts are wrong: {counts}, expected {wanted}")
    if mailing_list.memberships.count() != expected["inserted"]:
        raise RuntimeError("The list does not hold every imported subscriber.")

    copy_seconds = _bare_copy_seconds(path)
    load_after = os.getloadavg()
    figures = {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "copy_rows_per_s": rows / copy_seconds,
        "peak_rss_mb": memory.peak_kb / 1024,
    }
    figures["ratio"] = figures["rows_per_s"] / figures["copy_rows_per_s"]
    print(
        f"# import phases (s): {imp.timings}; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        f"on {os.cpu_count()} cores; worker peak PSS {memory.peak_pss_kb / 1024:.0f} MB",
        flush=True,
    )
    # On a shared machine the wall time says little; the CPU time spent does not depend on the load.
    print(
        f"# cpu seconds: worker with its children {worker_cpu:.1f} (start-up included), postgres {postgres_cpu:.1f}",
        flush=True,
    )
    print(
        f"BENCH import rows={rows} seconds={seconds:.2f} rows_per_s={figures['rows_per_s']:.0f} "
        f"copy_rows_per_s={figures['copy_rows_per_s']:.0f} ratio={figures['ratio']:.3f} "
        f"peak_rss_mb={figures['peak_rss_mb']:.0f}",
        flush=True,
    )
    return figures
