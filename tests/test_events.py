"""The event hub on its own: fan-out, filters, bounded buffers, resuming, closing."""

from control.events import EventHub

import asyncio


async def test_subscribers_get_what_they_asked_for_in_order():
    hub = EventHub()
    everything = hub.subscribe()
    only_a = hub.subscribe(tasks=["a"], kinds=["success"])
    for kind, task in [("run", "a"), ("success", "a"), ("success", "b")]:
        hub.publish(kind, task, 1.0, {})
    received = [everything.queue.get_nowait() for _ in range(3)]
    assert [(e.kind, e.task) for e in received] == [("run", "a"), ("success", "a"), ("success", "b")]
    assert [e.id for e in received] == sorted(e.id for e in received)
    assert only_a.queue.get_nowait().kind == "success" and only_a.queue.empty()


async def test_a_client_that_falls_behind_is_dropped_not_waited_for():
    hub = EventHub(buffer=3)
    slow = hub.subscribe()
    fast = hub.subscribe()
    for i in range(10):
        hub.publish("run", "a", float(i), {})
        while not fast.queue.empty():
            fast.queue.get_nowait()
    assert slow.dropped and hub.subscribers == 1 and hub.dropped_subscribers == 1
    items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert items[-1] is None and len(items) == 4  # three events, then the end


async def test_resume_after_a_known_event_and_close_ends_everyone():
    hub = EventHub()
    first = hub.subscribe()
    for i in range(5):
        hub.publish("run", "a", float(i), {"n": i})
    seen = [first.queue.get_nowait() for _ in range(2)]
    hub.unsubscribe(first)
    resumed = hub.subscribe(after=seen[-1].id)
    assert [resumed.queue.get_nowait().data["n"] for _ in range(3)] == [2, 3, 4]
    hub.close()
    assert await asyncio.wait_for(resumed.queue.get(), 1) is None and hub.subscribers == 0


async def test_publishing_from_a_thread_reaches_the_loop():
    hub = EventHub()
    subscription = hub.subscribe()
    await asyncio.to_thread(hub.publish, "success", "a", 1.0, {"from": "thread"})
    event = await asyncio.wait_for(subscription.queue.get(), 1)
    assert event.data == {"from": "thread"}
