"""`make bench`: start a throwaway Postgres and Redis, run each benchmark section, print its figures.

Postgres runs with its durable defaults (fsync on), unlike the test suite's, so the figures are
those of a real installation on this machine. Each section prints one line starting `BENCH`.
"""

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.local_services import LocalPostgres, LocalRedis, service_tempdir  # noqa: E402


def main() -> int:
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
        )
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)

        from bench.import_bench import run_import_bench

        run_import_bench(rows=int(os.environ.get("BENCH_IMPORT_ROWS", "1000000")), directory=directory)
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        for service in (redis, postgres):
            if service is not None:
                service.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
