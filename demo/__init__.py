"""`make demo`: the whole platform's story, step by step, against a running `make run` (see scenario.py)."""
