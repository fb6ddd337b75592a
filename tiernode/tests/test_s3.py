"""Context blobs on real S3 (SeaweedFS here, started by `make test`): boto3 calls in a thread."""

from __future__ import annotations

import os
import uuid

from tiernode.app import NodeApp
from tiernode.blob import S3ObjectStore, context_key, open_context
from tiernode.config import NodeConfig
from tiernode.tests.conftest import node_env, running

ENDPOINT = os.environ.get("S3_ENDPOINT_URL") or "http://127.0.0.1:8333"


async def test_eviction_writes_the_blob_to_s3(tmp_path, platform, clock) -> None:
    bucket = f"tiernode-test-{uuid.uuid4().hex[:12]}"
    env = node_env(
        tmp_path,
        OBJECT_STORE_ROOT="",
        PLATFORM_URL=platform.url,
        S3_ENDPOINT_URL=ENDPOINT,
        S3_BUCKET=bucket,
        S3_ACCESS_KEY_ID=os.environ.get("S3_ACCESS_KEY_ID", "any"),
        S3_SECRET_ACCESS_KEY=os.environ.get("S3_SECRET_ACCESS_KEY", "any"),
    )
    app = NodeApp(NodeConfig.from_env(env), clock=clock, run_sweeper=False)
    assert isinstance(app.object_store, S3ObjectStore)
    s3 = app.object_store.client
    s3.create_bucket(Bucket=bucket)
    try:
        async with running(app) as client:
            tid = uuid.uuid4()
            await client.chat(tid, "stored in the cloud", generation=1)
            assert (await client.evict(tid, 1)).json()["context_blob"] == "written"
            raw = await app.object_store.get(context_key(tid))
            assert await app.object_store.get(context_key(uuid.uuid4())) is None
        key = platform.key_for(tid)[1]
        assert raw is not None
        doc = open_context(raw, tenant_id=tid, key_for=lambda k: key)
        assert doc["messages"][0]["content"] == "stored in the cloud"
    finally:
        for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
