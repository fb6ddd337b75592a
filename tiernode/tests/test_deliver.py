"""``POST /internal/deliver/{id}``: a message the gateway answered from the context blob, stored exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from tiernode.app import NodeApp
from tiernode.tests.conftest import running


def _doc(request_id: str, text: str, generation: int = 1) -> dict[str, object]:
    return {
        "generation": generation,
        "request_id": request_id,
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": text}],
        "reply": f"cached answer to {text}",
    }


async def test_a_delivery_is_stored_once_and_a_retry_is_a_no_op(make_node: Callable[..., NodeApp]) -> None:
    tenant = uuid.uuid4()
    async with running(make_node()) as client:
        first = await client.request("POST", f"/internal/deliver/{tenant}", json_body=_doc("r-1", "my cat is Tom"))
        assert first.status == 200 and first.json()["delivered"] is True
        again = await client.request("POST", f"/internal/deliver/{tenant}", json_body=_doc("r-1", "my cat is Tom"))
        assert again.status == 200 and again.json() == {**first.json(), "delivered": False}
        store = client.app.manager.tenants[tenant].store
        assert store is not None
        assert [(m["role"], m["content"]) for m in store.recent_messages(10)] == [
            ("user", "my cat is Tom"),
            ("assistant", "cached answer to my cat is Tom"),
        ]
        assert store.facts == {"cat": "Tom"}  # learned from, like a chat


async def test_concurrent_repeats_of_many_deliveries_store_each_once(make_node: Callable[..., NodeApp]) -> None:
    tenant = uuid.uuid4()
    async with running(make_node()) as client:
        path = f"/internal/deliver/{tenant}"
        calls = [client.request("POST", path, json_body=_doc(f"r-{i % 20}", f"m{i % 20}")) for i in range(60)]
        answers = await asyncio.gather(*calls)
        assert all(a.status == 200 for a in answers)
        assert sum(a.json()["delivered"] for a in answers) == 20
        store = client.app.manager.tenants[tenant].store
        assert store is not None
        users = [m["content"] for m in store.recent_messages(200) if m["role"] == "user"]
        assert sorted(users) == sorted(f"m{i}" for i in range(20))


async def test_a_delivery_is_checked_like_any_internal_call(make_node: Callable[..., NodeApp]) -> None:
    tenant = uuid.uuid4()
    async with running(make_node()) as client:
        path = f"/internal/deliver/{tenant}"
        assert (await client.request("POST", path, json_body=_doc("r", "x"), auth=False)).status == 401
        assert (await client.request("POST", path, json_body=_doc("bad id!", "x"))).status == 400
        assert (await client.request("POST", path, json_body={**_doc("r", "x"), "messages": []})).status == 400
        assert (await client.warm(tenant, generation=3)).status == 200
        stale = await client.request("POST", path, json_body=_doc("r", "x", generation=2))
        assert stale.status == 409 and stale.json()["error"]["code"] == "stale_generation"


def test_a_crash_inside_a_delivery_stores_none_of_it(tmp_path) -> None:
    import pytest

    from tiernode.chat import deliver_exchange
    from tiernode.store import TenantStore

    store = TenantStore(tmp_path, uuid.uuid4())
    before = store.message_count

    class Crash(Exception):
        pass

    original = store.mark_delivered

    def crash_before_marker(request_id: str, seq: int) -> None:
        raise Crash()

    store.mark_delivered = crash_before_marker  # type: ignore[method-assign]
    with pytest.raises(Crash):
        deliver_exchange(store, "req-1", "hello", "hi")
    assert store.message_count == before and store.delivered_seq("req-1") is None
    store.mark_delivered = original  # type: ignore[method-assign]
    seq, stored = deliver_exchange(store, "req-1", "hello", "hi")
    assert stored and store.delivered_seq("req-1") == seq
    assert [m["content"] for m in store.recent_messages(10)][-2:] == ["hello", "hi"]
    assert deliver_exchange(store, "req-1", "hello", "hi") == (seq, False)
    store.close()
