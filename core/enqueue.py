"""How a service enqueues a Celery task without importing the module that defines it.

Tasks import services (a task is a thin shell that loads by id and calls a service); a service that must enqueue
a task looks it up by its registered name (the `name=` of its `@shared_task`, the same name the beat schedule uses)
in the Celery app's registry, so imports run one way: tasks -> services. Each app's `AppConfig.ready()` imports its
`tasks` module, so the task is registered in every process that has set Django up (web, worker, commands, tests),
and a name that is not registered fails at once (`celery.exceptions.NotRegistered`, a `KeyError`) where the service
asks for it. The task object is Celery's own, so `delay`/`apply_async` behave as before, eager mode included
(`current_app.send_task` would bypass `task_always_eager`).
"""

from celery import Task, current_app


def task_named(name: str) -> Task:
    """The registered Celery task called `name`."""
    return current_app.tasks[name]
