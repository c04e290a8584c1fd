"""Send throughput: a 100,000-recipient campaign through the real pipeline vs a bare SMTP loop.

The pipeline run is the product as deployed: the campaign is scheduled, a worker snapshots the
audience into the ledger, two Celery worker processes claim batches, render each message
(personalised subject and body, tracked links, List-Unsubscribe, signed delivery token), send
it to the local SMTP sink over a pooled connection and record every outcome. The bare loop
sends pre-built messages of the same kind over one persistent connection per process, from
the same number of processes, to the same sink: the ceiling the pipeline is measured against.

    BENCH send recipients=100000 seconds=S emails_per_s=R bare_per_s=B ratio=R/B worker_peak_rss_mb=M

Run by `make bench` (bench/run.py provides Postgres and Redis). BENCH_SEND_RECIPIENTS changes
the size. Exits 1 when the acceptance (ratio >= 0.5, worker peak RSS under 300 MB, every
recipient sent exactly once) does not hold.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Workspace  # noqa: E402
from campaigns import services, tasks  # noqa: E402
from campaigns.models import Campaign, Delivery, Relay, Sender  # noqa: E402
from campaigns.sending import PLANS, Claimed, build_campaign_message  # noqa: E402
from common.local_services import free_port, port_is_open, stop_process  # noqa: E402
from common.smtp_sink import Store  # noqa: E402
from subscribers.models import MailingList  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RECIPIENTS = int(os.environ.get("BENCH_SEND_RECIPIENTS", "100000"))
PROCESSES = 2
RSS_LIMIT_MB = 300
HTML = """<html><head><style>.cta { color: #fff; background: #3344cc; padding: 8px 14px; }
p { font-family: sans-serif; }</style></head><body>
<p>Hello {{ subscriber.first_name | default("there") }},</p>
<p>Here is what is new this week for subscriber #{{ subscriber.n }} ({{ subscriber.email }}).</p>
<p><a class="cta" href="https://example.com/spring-sale">See the spring sale</a></p>
<p>Read <a href="https://example.com/blog/how-we-ship">how we ship</a> and
<a href="https://example.com/changelog">the changelog</a>.</p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="{{ preferences_url }}">Preferences</a></p>
</body></html>"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start_sink(store: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "common.smtp_sink", "serve", "--port", str(port), "--store", str(store)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while not port_is_open(port):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the SMTP sink did not start")
        time.sleep(0.1)
    return process, port


def start_workers(log_dir: Path) -> list[tuple[subprocess.Popen, Path]]:
    workers = []
    environment = dict(os.environ, SEND_BATCH_SIZE="500", SEND_TASKS_PER_CAMPAIGN="4", LOG_LEVEL="WARNING")
    for number in range(1, PROCESSES + 1):
        log_path = log_dir / f"worker{number}.log"
        with open(log_path, "wb") as output:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "--app",
                    "config",
                    "worker",
                    "--queues",
                    "send",
                    "--concurrency",
                    "1",
                    "--hostname",
                    f"bench{number}-{uuid.uuid4().hex[:6]}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                cwd=REPO,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        workers.append((process, log_path))
    deadline = time.monotonic() + 60
    for process, log_path in workers:
        while "ready." not in log_path.read_text(errors="replace"):
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"a worker did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
    return workers


def group_rss_mb(group_ids: set[int]) -> dict[int, float]:
    """Resident memory of every process in the given process groups (the workers and their children)."""
    sizes = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            if int(fields[2]) not in group_ids:  # field 5 of stat: the process group id
                continue
            with open(f"/proc/{entry.name}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        sizes[int(entry.name)] = int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return sizes


def build_fixture() -> Campaign:
    workspace = Workspace.objects.create(name="Bench", slug=f"bench-{uuid.uuid4().hex[:6]}")
    mailing_list = MailingList.objects.create(workspace=workspace, name="Everyone")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO subscribers_subscriber
                (workspace_id, email, name, attributes, status, source, consent_method, consent_text,
                 created_at, updated_at)
            SELECT %s, 'reader' || n || '@bench.example', 'Reader' || n || ' Example', jsonb_build_object('n', n),
                   'active', 'bench', '', '', now(), now()
            FROM generate_series(1, %s) AS n
            """,
            [workspace.pk, RECIPIENTS],
        )
        cursor.execute(
            """
            INSERT INTO subscribers_listmembership
                (workspace_id, mailing_list_id, subscriber_id, status, subscribed_at, created_at, updated_at)
            SELECT %s, %s, id, 'confirmed', now(), now(), now() FROM subscribers_subscriber WHERE workspace_id = %s
            """,
            [workspace.pk, mailing_list.pk, workspace.pk],
        )
        cursor.execute("ANALYZE")
    sender = Sender.objects.create(
        workspace=workspace, email="news@bench.example", name="Bench News", verified_at=timezone.now()
    )
    campaign = services.campaign_create(
        workspace=workspace,
        actor=None,
        name="Spring newsletter",
        subject="{{ subscriber.first_name }}, the spring sale starts now (#{{ subscriber.n }})",
        preheader="Hand-picked for {{ subscriber.name }}",
        html=HTML,
        text="",
        sender_id=sender.pk,
        reply_to="support@bench.example",
        list_ids=[mailing_list.pk],
    )
    return campaign


def bare_sender(port: int, messages: list[tuple[str, str, bytes]], count: int, ready, go) -> None:
    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
    smtp.ehlo()
    ready.set()
    go.wait()
    total = len(messages)
    for index in range(count):
        mail_from, rcpt, payload = messages[index % total]
        smtp.sendmail(mail_from, [rcpt], payload)
    smtp.quit()


def bare_loop(port: int, messages: list[tuple[str, str, bytes]]) -> float:
    """Seconds for PROCESSES processes to send RECIPIENTS pre-built messages, one connection each."""
    context = multiprocessing.get_context("fork")
    go = context.Event()
    share = RECIPIENTS // PROCESSES
    counts = [share + (1 if i < RECIPIENTS % PROCESSES else 0) for i in range(PROCESSES)]
    readies = [context.Event() for _ in counts]
    connection.close()  # forked children must not share the database connection
    workers = [
        context.Process(target=bare_sender, args=(port, messages, count, ready, go))
        for count, ready in zip(counts, readies, strict=True)
    ]
    for worker in workers:
        worker.start()
    for ready in readies:
        ready.wait(30)
    started = time.monotonic()
    go.set()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    if any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError("a bare sender failed")
    return elapsed


def main() -> int:
    bench_dir = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="herald-bench-")) / "send"
    bench_dir.mkdir(parents=True, exist_ok=True)
    store_dir = bench_dir / "sink"
    store = Store(store_dir)
    sink, port = start_sink(store_dir)
    workers: list[tuple[subprocess.Popen, Path]] = []
    try:
        log(f"building {RECIPIENTS} subscribers ...")
        campaign = build_fixture()
        Relay.objects.create(
            workspace=campaign.workspace,
            name="Local sink",
            host="127.0.0.1",
            port=port,
            tls_mode="none",
            max_connections=8,
        )
        workers = start_workers(bench_dir)
        groups = {process.pid for process, _ in workers}
        peak_rss = 0.0
        log("sending through the pipeline ...")
        started = time.monotonic()
        services.campaign_schedule(campaign=campaign)
        next_sweep = time.monotonic() + 15
        while True:
            status = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).get()
            sizes = group_rss_mb(groups)
            if sizes:
                peak_rss = max(peak_rss, *sizes.values())
            if status == Campaign.Status.SENT:
                break
            if time.monotonic() > next_sweep:
                tasks.sweep()  # what beat does every 15 s in production
                next_sweep = time.monotonic() + 15
            if time.monotonic() - started > 1800:
                raise RuntimeError("the campaign did not finish within 30 minutes")
            time.sleep(0.25)
        seconds = time.monotonic() - started
        sizes = group_rss_mb(groups)
        if sizes:
            peak_rss = max(peak_rss, *sizes.values())
        for process, _ in workers:
            stop_process(process, timeout=20)
        workers = []

        statuses = dict(
            Delivery.objects.filter(campaign=campaign).values_list("status").annotate(n=django.db.models.Count("id"))
        )
        arrived = store.count()
        recorded = Delivery.objects.filter(campaign=campaign, status="sent").exclude(message_id="").count()
        log(f"ledger {statuses}, sink {arrived}, outcomes recorded with Message-ID {recorded}")

        # Pre-build real messages of this campaign (same size and headers) for the bare loop.
        plan = PLANS.get(campaign.pk)
        sample = Delivery.objects.filter(campaign=campaign).select_related("subscriber").order_by("id")[:1000]
        messages = []
        for delivery in sample:
            claimed = Claimed(
                delivery.pk,
                delivery.subscriber_id,
                delivery.email,
                0,
                delivery.subscriber.name,
                delivery.subscriber.attributes,
            )
            messages.append((plan.from_email, delivery.email, build_campaign_message(plan=plan, delivery=claimed)[1]))
        store.clear()
        log("sending the bare loop ...")
        bare_seconds = bare_loop(port, messages)
        bare_arrived = store.count()
        store.clear()

        rate = RECIPIENTS / seconds
        bare_rate = RECIPIENTS / bare_seconds
        ratio = rate / bare_rate
        print(
            f"BENCH send recipients={RECIPIENTS} seconds={seconds:.1f} emails_per_s={rate:.0f} "
            f"bare_per_s={bare_rate:.0f} ratio={ratio:.2f} worker_peak_rss_mb={peak_rss:.0f}",
            flush=True,
        )
        problems = []
        if statuses != {"sent": RECIPIENTS} or arrived != RECIPIENTS or recorded != RECIPIENTS:
            problems.append(f"not every recipient was sent exactly once (ledger {statuses}, sink {arrived})")
        if bare_arrived != RECIPIENTS:
            problems.append(f"the bare loop delivered {bare_arrived}")
        if ratio < 0.5:
            problems.append(f"ratio {ratio:.2f} is below 0.5")
        if peak_rss >= RSS_LIMIT_MB:
            problems.append(f"worker peak RSS {peak_rss:.0f} MB is not under {RSS_LIMIT_MB} MB")
        for problem in problems:
            log(f"ACCEPTANCE FAILED: {problem}")
        return 1 if problems else 0
    finally:
        for process, _ in workers:
            stop_process(process, timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        stop_process(sink, timeout=10)


if __name__ == "__main__":
    sys.exit(main())
