"""`make bench`: start a throwaway Postgres and Redis, migrate, then run every bench/*_bench.py.

Each benchmark runs in its own process against the same services and prints its `BENCH ...`
line; this script exits non-zero if any of them failed. Pass names to run only some:
`python bench/run.py send` (`make bench BENCH=send`). Postgres runs with its durable defaults
(fsync on), unlike the test suite's, so the figures are those of a real installation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.local_services import LocalPostgres, LocalRedis, service_tempdir  # noqa: E402


def main(argv: list[str]) -> int:
    wanted = set(argv)
    benches = sorted(path.stem.removesuffix("_bench") for path in (REPO / "bench").glob("*_bench.py"))
    benches = [name for name in benches if not wanted or name in wanted]
    if not benches:
        print(f"No benchmark matches {sorted(wanted)}.", file=sys.stderr)
        return 2
    directory = service_tempdir("herald-bench-")
    postgres = redis = None
    failures = 0
    try:
        # Durable defaults (fsync on), unlike the test suite: the figures are a real installation's.
        postgres = LocalPostgres(directory / "postgres").start()
        redis = LocalRedis(directory / "redis").start()
        environment = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_URL=postgres.url,
            REDIS_URL=redis.url,
            SECRET_KEY=os.environ.get("SECRET_KEY", "bench-secret-key-only-for-benchmarks"),
            DEBUG="false",
            HTTPS="false",
            LOG_LEVEL="WARNING",
            BENCH_DIR=str(directory),
            MEDIA_ROOT=str(directory / "media"),
            STATIC_ROOT=str(directory / "static"),
            PYTHONUNBUFFERED="1",
        )
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=environment, check=True)
        for name in benches:
            started = time.monotonic()
            result = subprocess.run([sys.executable, "bench/run.py", "--one", name], cwd=REPO, env=environment)
            if result.returncode != 0:
                failures += 1
                print(f"bench {name} failed (exit {result.returncode})", file=sys.stderr)
            print(f"(bench {name} took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    finally:
        for service in (redis, postgres):
            if service is not None:
                service.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return 1 if failures else 0


def run_one(name: str) -> int:
    """One benchmark, in this (child) process, against the services the parent started."""
    if name in ("tracking", "report"):
        # These configure Django themselves (their own static and spool directories) before setup.
        return subprocess.run([sys.executable, str(REPO / "bench" / f"{name}_bench.py")], cwd=REPO).returncode
    import django

    django.setup()
    if name == "import":
        from bench.import_bench import run_import_bench

        run_import_bench(
            rows=int(os.environ.get("BENCH_IMPORT_ROWS", "1000000")), directory=Path(os.environ["BENCH_DIR"])
        )
        return 0
    if name == "send":
        from bench.send_bench import main as send_main

        return send_main()
    print(f"Unknown benchmark {name!r}.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        sys.exit(run_one(sys.argv[2]))
    sys.exit(main(sys.argv[1:]))
