"""``python -m tiernode``: run one tier node with uvicorn, configured only by environment."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from tiernode.app import NodeApp
from tiernode.config import ConfigError, NodeConfig


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = NodeConfig.from_env()
    except ConfigError as exc:
        print(f"tiernode: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        NodeApp(cfg),
        host=cfg.host,
        port=cfg.port,
        lifespan="on",
        access_log=False,
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        timeout_graceful_shutdown=20,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
