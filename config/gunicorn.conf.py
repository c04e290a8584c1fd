"""gunicorn settings for Herald's web nodes, read from the environment.

On TERM a worker first reports itself as draining on /readyz for DRAIN_SECONDS, so the load
balancer's health check takes it out of the pool, and only then stops accepting; requests
already in flight get `graceful_timeout` to finish.
"""

import os
import signal
import threading

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Workers are recycled now and then so a slow leak cannot grow without bound, but rarely: at the
# tracking endpoints' thousands of requests a second, every few thousand would restart a worker
# every few seconds and put each restart in the latency tail.
max_requests = 100000
max_requests_jitter = 10000
accesslog = "-"
errorlog = "-"
proc_name = os.environ.get("NODE_NAME") or "herald-web"

DRAIN_SECONDS = float(os.environ.get("DRAIN_SECONDS", "0"))


def post_worker_init(worker):
    from operations.lifecycle import begin_draining

    stop_worker = signal.getsignal(signal.SIGTERM)

    def drain_then_stop(signum, frame):
        begin_draining()
        if DRAIN_SECONDS > 0:
            threading.Timer(DRAIN_SECONDS, stop_worker, args=(signum, frame)).start()
        else:
            stop_worker(signum, frame)

    signal.signal(signal.SIGTERM, drain_then_stop)


def child_exit(server, worker):
    # Metrics of a worker that exited are kept as totals, not as a live process's gauges.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
