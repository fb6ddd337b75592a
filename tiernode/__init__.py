"""Reference tier node: a small ASGI service implementing the tier-pod contract with real RocksDB tenants.

Run it with ``python -m tiernode`` (configured only by environment, like a pod; see ``tiernode.config``).
No Django here: the node talks to the platform over HTTP like a real pod.
"""
