"""The embedded default's Celery broker: kombu's filesystem transport, one directory of message files per deployment.

Producers (web, gateway, commands) write a file per message and the worker moves it out as it takes it, so the worker
and beat of `make run` need no server. Unacknowledged messages of a killed worker are not redelivered by this
transport (it has no visibility timeout); `archival.requeue_stalled_jobs` covers those jobs, as it does for Redis.
"""

from pathlib import Path
from typing import Any


def filesystem_broker_options(root: Path) -> dict[str, Any]:
    """Transport options for `filesystem://` under `root`, creating its directories (kombu expects them to exist)."""
    queue, control = root / "queue", root / "control"
    for folder in (queue, control):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "control_folder": str(control),
        "store_processed": False,
        "polling_interval": 0.5,
    }
