"""Tracking benchmark: the click redirect and open pixel under wrk for 20 seconds.

Two gunicorn nodes serve the test database; HAProxy (round robin, as in production) sits in
front of them when the `haproxy` program is installed, otherwise wrk splits its connections
between the two nodes directly (the line says which). Requests are a mix of clicks (2/3) and
opens (1/3) over 5,000 deliveries of a campaign with three links. After the run the stream is
drained and the events stored are counted against the requests wrk made. The nodes run the
production gunicorn config (config/gunicorn.conf.py, which recycles a worker every ~100,000
requests). It prints:

BENCH tracking rps=R p99_ms=L errors=E

`make bench` runs it (bench/run.py); alone: `make bench BENCH=tracking`, or
`.venv/bin/python bench/tracking_bench.py`, which starts its own Postgres and Redis.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DELIVERIES = 5000
DURATION = int(os.environ.get("BENCH_TRACKING_SECONDS", "20"))
# wrk, HAProxy and both nodes share the machine's two cores: 16 connections already drive the
# nodes to their limit (about 2,700 requests a second here); 32 only lengthen the queue (p99 51 ms).
CONNECTIONS = int(os.environ.get("BENCH_TRACKING_CONNECTIONS", "16"))

LUA = """
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter * 7919) %% #paths + 1], {["User-Agent"] = "%(ua)s"})
end
"""
UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
)


def seed(count: int = DELIVERIES) -> tuple[int, list[str]]:
    """A sent campaign with three links and `count` deliveries; returns its id and the tracked paths."""
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Workspace
    from campaigns.lib.tracking import make_delivery_token
    from campaigns.models import Campaign, CampaignLink, Delivery

    workspace = Workspace.objects.create(name="Tracking bench", slug=f"tracking-bench-{int(time.time())}")
    campaign = Campaign.objects.create(workspace=workspace, name="Bench", subject="Bench", status="sent")
    for position in range(3):
        CampaignLink.objects.create(campaign=campaign, position=position, url=f"https://example.com/{position}")
    sent_at = timezone.now() - timezone.timedelta(hours=1)
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO campaigns_delivery (workspace_id, campaign_id, email, status, attempts, leased_by,
                   smtp_response, message_id, sent_at, created_at, updated_at)
               SELECT %s, %s, 'bench' || n || '@example.org', 'sent', 1, '', '', '', %s, now(), now()
               FROM generate_series(1, %s) n""",
            [workspace.pk, campaign.pk, sent_at, count],
        )
    paths = []
    for delivery_id in Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True):
        token = make_delivery_token(workspace_id=workspace.pk, campaign_id=campaign.pk, delivery_id=delivery_id)
        paths.append(f"/t/o/{token}.gif" if delivery_id % 3 == 0 else f"/t/c/{token}/{delivery_id % 3}")
    return campaign.pk, paths


def _start_node(port: int, log: Path) -> subprocess.Popen:
    env = dict(
        os.environ,
        PORT=str(port),
        # The production defaults (2 processes of 4 threads per node) unless told otherwise.
        WEB_CONCURRENCY=os.environ.get("BENCH_WEB_CONCURRENCY", "2"),
        GUNICORN_THREADS=os.environ.get("BENCH_GUNICORN_THREADS", "4"),
        PYTHONUNBUFFERED="1",
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "config/gunicorn.conf.py", "config.wsgi"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _wait_http(f"http://127.0.0.1:{port}/healthz", process)
    return process


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited at start-up")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - 127.0.0.1 only
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _haproxy(directory: Path, port: int, backends: list[int]) -> subprocess.Popen | None:
    if shutil.which("haproxy") is None or os.environ.get("BENCH_NO_HAPROXY") == "1":
        return None
    config = directory / "haproxy.cfg"
    servers = "\n".join(f"  server web{i} 127.0.0.1:{p} check inter 1s" for i, p in enumerate(backends, 1))
    config.write_text(
        "global\n  maxconn 4096\n"
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n"
        "  option http-keep-alive\n  http-reuse safe\n  timeout http-keep-alive 2s\n  retries 2\n  option redispatch\n"
        f"frontend tracking\n  bind 127.0.0.1:{port}\n  default_backend web\n"
        f"backend web\n  balance roundrobin\n  option httpchk\n"
        "  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1\n"
        f"{servers}\n"
    )
    process = subprocess.Popen(
        ["haproxy", "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    _wait_http(f"http://127.0.0.1:{port}/healthz", process)
    return process


def _wrk(url: str, script: Path, connections: int, seconds: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(output: str) -> dict:
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    seconds = float(re.search(r"requests in ([\d.]+)(m?s)", output).group(1))
    if re.search(r"requests in [\d.]+ms", output):
        seconds /= 1000
    percentiles = {
        int(p): _ms(v, u) for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non2xx.group(1)) if non2xx else 0
    return {
        "requests": requests,
        "seconds": seconds,
        "p50": percentiles.get(50, 0),
        "p99": percentiles.get(99, 0),
        "errors": errors,
    }


def run_tracking_bench(*, directory: Path) -> dict:
    from analytics import buffer, tasks
    from analytics.models import Event
    from common.local_services import free_port, stop_process

    directory.mkdir(parents=True, exist_ok=True)
    campaign_id, paths = seed()
    paths_file = directory / "paths.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = directory / "tracking.lua"
    script.write_text(LUA % {"paths": paths_file, "ua": UA})
    buffer.redis_client().delete(buffer.STREAM)

    ports = [free_port(), free_port()]
    nodes = [_start_node(port, directory / f"web{i}.log") for i, port in enumerate(ports, 1)]
    balancer = None
    try:
        front = free_port()
        balancer = _haproxy(directory, front, ports)
        if balancer:
            via = "haproxy in front of two gunicorn nodes"
            # Warm every process's link-table cache, then measure.
            warmups = [_wrk(f"http://127.0.0.1:{front}", script, 8, 2).communicate()[0]]
            runs = [_wrk(f"http://127.0.0.1:{front}", script, CONNECTIONS, DURATION)]
        else:
            via = "two gunicorn nodes directly (no haproxy installed), connections split between them"
            warmups = [_wrk(f"http://127.0.0.1:{port}", script, 4, 2).communicate()[0] for port in ports]
            runs = [_wrk(f"http://127.0.0.1:{port}", script, CONNECTIONS // 2, DURATION) for port in ports]
        outputs = [run.communicate()[0] for run in runs]
        results = [parse_wrk(output) for output in outputs]
        for output in outputs:
            print("\n".join(f"# wrk: {line}" for line in output.strip().splitlines()), flush=True)
    finally:
        if balancer:
            balancer.terminate()
            balancer.wait(timeout=10)
        for node in nodes:
            stop_process(node, timeout=15)

    requests = sum(r["requests"] for r in results)
    warmup_requests = sum(parse_wrk(output)["requests"] for output in warmups)
    rps = sum(r["requests"] / r["seconds"] for r in results)
    p50 = max(r["p50"] for r in results)
    p99 = max(r["p99"] for r in results)
    errors = sum(r["errors"] for r in results)

    # Every answered request left one event in the stream; drain and count them.
    started = time.monotonic()
    while buffer.stream_length():
        tasks.drain_stream(budget_seconds=60)
    drain_seconds = time.monotonic() - started
    stored = Event.objects.filter(campaign_id=campaign_id).count()
    print(f"# tracking via {via}; {CONNECTIONS} connections, {DURATION} s; p50 {p50:.1f} ms", flush=True)
    print(
        f"# {requests} measured + {warmup_requests} warm-up requests, {stored} events stored, "
        f"drained in {drain_seconds:.1f} s ({stored / max(drain_seconds, 0.001):.0f} events/s)",
        flush=True,
    )
    print(f"BENCH tracking rps={rps:.0f} p99_ms={p99:.1f} errors={errors}", flush=True)
    return {"rps": rps, "p99_ms": p99, "errors": errors, "requests": requests, "stored": stored}


def standalone(run) -> int:
    """Run one benchmark against its own throwaway Postgres and Redis (what bench/run.py does for all)."""
    sys.path.insert(0, str(REPO))
    from common.local_services import LocalPostgres, LocalRedis, service_tempdir

    directory = service_tempdir("herald-bench-")
    postgres = redis = None
    try:
        postgres = LocalPostgres(directory / "postgres").start()
        redis = LocalRedis(directory / "redis").start()
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=postgres.url,
            REDIS_URL=redis.url,
            SECRET_KEY="bench-secret-key-not-for-production",
            DEBUG="false",
            HTTPS="false",
            LOG_LEVEL="WARNING",
            MEDIA_ROOT=str(directory / "media"),
            STATIC_ROOT=str(directory / "static"),
            ANALYTICS_SPOOL_DIR=str(directory / "spool"),
        )
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        call_command("collectstatic", "--noinput", verbosity=0)
        run(directory=directory / "work")
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        for service in (redis, postgres):
            if service is not None:
                service.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main(run, name: str) -> int:
    """Under bench/run.py (BENCH_DIR set: services up and migrated) or alone (services of its own)."""
    if not os.environ.get("BENCH_DIR"):
        return standalone(run)
    sys.path.insert(0, str(REPO))
    directory = Path(os.environ["BENCH_DIR"]) / name
    os.environ.setdefault("STATIC_ROOT", str(directory / "static"))
    os.environ.setdefault("ANALYTICS_SPOOL_DIR", str(directory / "spool"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("collectstatic", "--noinput", verbosity=0)
    run(directory=directory / "work")
    return 0


if __name__ == "__main__":
    sys.exit(main(run_tracking_bench, "tracking"))
