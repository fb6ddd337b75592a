"""`GET /v1/models`: the models of the caller's tier, in OpenAI's list shape, answered by the gateway itself.

The tier policy names each tier's models (`models`, default the reference node's `percolate-reference`).
"""

import json

from django.conf import settings

OWNER = "percolate"


def models_body(tier: str) -> bytes:
    models = settings.TIER_POLICY[tier].models
    data = [{"id": model, "object": "model", "created": 0, "owned_by": OWNER} for model in models]
    return json.dumps({"object": "list", "data": data}).encode()
