"""`make run` for one machine: Herald on its own Postgres and Redis kept in var/, seeded with a demo.

Runs in the foreground; Ctrl-C stops everything. Usage: python platform/devserver.py [--port N]
"""

import argparse
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common.local_herald import LocalHerald  # noqa: E402
from common.local_services import ServiceError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--var-dir", type=Path, default=REPO / "var" / "devserver", help="where data and logs go")
    parser.add_argument("--port", type=int, default=58080, help="web port (default 58080)")
    parser.add_argument("--postgres-port", type=int, default=55432)
    parser.add_argument("--redis-port", type=int, default=56379)
    args = parser.parse_args()

    herald = LocalHerald(
        args.var_dir.resolve(), web_port=args.port, postgres_port=args.postgres_port, redis_port=args.redis_port
    )

    def stop_on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    try:
        print("Starting Postgres, Redis and the web server ...", flush=True)
        herald.up()
        print(
            f"\nHerald is up at {herald.url}/\n"
            f"  Sign in as demo@herald.test / herald-demo-password (also opens {herald.url}/admin/)\n"
            f"  Health detail: curl -H 'Authorization: Bearer {herald.health_token}' {herald.url}/health\n"
            f"  Logs and data: {herald.directory}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        herald.web.wait()
        print("The web server stopped unexpectedly; see web.log.", file=sys.stderr)
        return 1
    except ServiceError as exc:
        print(f"Could not start Herald: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        herald.down()


if __name__ == "__main__":
    sys.exit(main())
