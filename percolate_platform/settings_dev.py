"""Development settings: `percolate_platform.settings` with DEBUG on unless the environment says otherwise.

`percolate_platform.settings` keeps DEBUG off unless `DJANGO_DEBUG=true` is given, so a deployment that misses a
variable refuses to start instead of running on development secrets (#16). The tools that load the settings on a
developer's machine with no environment of their own use this module: the test suite (pytest-django) and the type
checker (django-stubs). `make run` asks for the same with `DJANGO_DEBUG=true`. Processes the tests start inherit
`DJANGO_DEBUG` from this process's environment, as they inherited the development default before.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from percolate_platform.settings import *  # noqa: F403
