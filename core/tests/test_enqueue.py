"""Services enqueue tasks by their registered name: every name they use is registered once Django is set up (each
app's AppConfig.ready imports its tasks), and an unknown name fails where it is asked for."""

import pytest
from celery.exceptions import NotRegistered

from archival.jobs import TASKS
from core.enqueue import task_named

NAMES_SERVICES_USE = [*TASKS.values(), "moves.move_tenant", "billing.process_event", "billing.follow_tier"]


@pytest.mark.parametrize("name", NAMES_SERVICES_USE)
def test_every_task_a_service_enqueues_is_registered_under_its_name(name: str) -> None:
    assert task_named(name).name == name


def test_an_unknown_task_name_fails_at_once() -> None:
    with pytest.raises(NotRegistered):
        task_named("archival.no_such_task")
