"""Settings of the web process `bench.billing` runs: the platform's, with the URLs of `bench.billing_urls` (the
platform's plus /bench/bare/)."""

from percolate_platform.settings import *  # noqa: F403

ROOT_URLCONF = "bench.billing_urls"
