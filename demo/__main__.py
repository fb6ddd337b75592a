"""`python -m demo` (`make demo`): run the scenario against `make run`'s processes; exit 1 if any step failed."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--gateway", default=os.environ.get("DEMO_GATEWAY_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--web", default=os.environ.get("DEMO_WEB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds any one wait may take")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "percolate_platform.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from demo.runner import Runner
    from demo.scenario import STEPS, Demo, run

    runner = Runner(total=STEPS)
    runner.say(f"Percolate demo against {args.web} (gateway {args.gateway}).")
    runner.say(f"Watch it live: {args.web}/admin/overview/ (log in as the admin `make run` printed).")
    return run(runner, Demo(gateway=args.gateway, web=args.web, timeout=args.timeout))


if __name__ == "__main__":
    sys.exit(main())
