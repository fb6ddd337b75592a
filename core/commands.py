"""The base class every platform `manage.py` command uses: errors end as ONE readable line and a non-zero exit.

- A `PlatformError` raised by a service becomes a `CommandError` with the service's message.
- A database error (server down, constraint, ...) becomes a `CommandError` with the first line of the driver message.
- From the command line, a bad argument (argparse) and a `CommandError` print `Error: <message>` on stderr and exit
  with a non-zero code, without usage text or traceback; `--traceback` still shows the traceback for debugging.
- From `call_command` (tests, other code) the `CommandError` is raised as usual.
"""

import contextlib
import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, SystemCheckError, handle_default_options
from django.db import DatabaseError, connections

from core.audit import Actor
from core.errors import InvalidInput, PlatformError

_PREFIX = "Error: "


def one_line(message: object) -> str:
    """The message on one line: the first non-empty line, whitespace collapsed."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    text = " ".join(lines[0].split()) if lines else ""
    return text or "unknown error"


def platform_error_line(exc: PlatformError) -> str:
    """The service's message; for invalid input, followed by the field messages (`invalid email (email: ...)`)."""
    message = one_line(exc.message)
    if isinstance(exc, InvalidInput) and exc.fields:
        details = "; ".join(f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in exc.fields.items())
        message = f"{message} ({one_line(details)})"
    return message


def cli_actor() -> Actor:
    """The audit actor for a command run by an operator: `cli:<os user>`."""
    try:
        user = getpass.getuser()
    except Exception:  # no login name (containers without a passwd entry)
        user = "unknown"
    return Actor.system(f"cli:{user}")


class PlatformCommand(BaseCommand):
    """Subclasses implement `handle()` as usual and call services; this class owns error reporting."""

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except PlatformError as exc:
            raise CommandError(platform_error_line(exc)) from exc
        except DatabaseError as exc:
            raise CommandError(f"database error: {one_line(exc)}") from exc

    def run_from_argv(self, argv: list[str]) -> None:
        """Like BaseCommand.run_from_argv, but argument errors and unexpected exceptions are one line too."""
        self._called_from_command_line = True
        show_traceback = "--traceback" in argv
        try:
            parser = self.create_parser(argv[0], argv[1])
            # Parse errors raise CommandError("Error: ...") instead of printing the usage and exiting.
            parser.called_from_command_line = False
            options = parser.parse_args(argv[2:])
            cmd_options = vars(options)
            args = cmd_options.pop("args", ())
            handle_default_options(options)
            self.execute(*args, **cmd_options)
        except SystemCheckError as exc:
            if show_traceback:
                raise
            self.stderr.write(str(exc), lambda x: x)
            sys.exit(exc.returncode)
        except CommandError as exc:
            if show_traceback:
                raise
            message = one_line(exc)
            if message.startswith(_PREFIX):
                message = message[len(_PREFIX) :]
            self.stderr.write(_PREFIX + message)
            sys.exit(exc.returncode or 1)
        except BrokenPipeError:
            # stdout went away (`| head`): stop quietly, as command-line tools do, without a second error at exit.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except KeyboardInterrupt:
            self.stderr.write(_PREFIX + "interrupted")
            sys.exit(130)
        except Exception as exc:
            if show_traceback:
                raise
            self.stderr.write(f"{_PREFIX}unexpected {type(exc).__name__}: {one_line(exc)} (run with --traceback)")
            sys.exit(1)
        finally:
            with contextlib.suppress(Exception):  # closing after an error must not raise a second one
                connections.close_all()
