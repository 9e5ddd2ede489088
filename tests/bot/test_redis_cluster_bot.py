"""The bot on a real three-node Redis Cluster: conversations through two dialogue managers (two workers)
sharing the cluster for sessions and the transcript stream, and the channels' delivery dedupe."""

from __future__ import annotations

import asyncio

from conftest import REPO
from test_dialogue import KeywordUnderstander

from bot.channels.dedupe import RedisEventDedupe
from bot.dialogue import DialogueManager
from bot.domain import load_domain
from bot.messages import Message
from bot.sessions import RedisSessionStore
from bot.transcripts import RedisTranscriptStream

DEMO_DOMAIN = REPO / "configs" / "demo" / "domain.yml"


def test_two_workers_hold_conversations_on_the_cluster(redis_cluster_url):
    """Each customer's first message goes to one worker and the answer to the slot question to the other: the
    form carries over through the cluster, and every turn is on the stream."""
    customers = [f"shopper-{n}" for n in range(8)]

    async def main():
        domain = load_domain(DEMO_DOMAIN)
        async with RedisSessionStore(redis_cluster_url) as store_a, RedisSessionStore(redis_cluster_url) as store_b:
            stream = RedisTranscriptStream(redis_cluster_url)
            await stream.start()  # as BotApp.start does: the cluster client learns the slots before concurrent use
            await stream.ping()
            workers = [DialogueManager(domain, KeywordUnderstander(), store, transcripts=stream)
                       for store in (store_a, store_b)]
            asked = await asyncio.gather(*(workers[n % 2].handle(Message(c, "where is my order", "rest"))
                                           for n, c in enumerate(customers)))
            answered = await asyncio.gather(*(workers[(n + 1) % 2].handle(Message(c, "48213", "rest"))
                                              for n, c in enumerate(customers)))
            states = [await store_a.load(c) for c in customers]
            turns = await stream.read()
            await stream.close()
        return asked, answered, states, turns

    asked, answered, states, turns = asyncio.run(main())
    assert all("order number" in reply.text for reply in asked), [r.text for r in asked]
    assert all("48213" in reply.text and "on its way" in reply.text for reply in answered), [r.text for r in answered]
    assert [s.turn_count for s in states] == [2] * len(customers)
    assert all(s.history[-1].completed == "track_order" for s in states)
    assert sorted(t.session_id for t in turns) == sorted(customers * 2)


def test_the_delivery_dedupe_claims_once_across_workers_on_the_cluster(redis_cluster, redis_cluster_url):
    async def main():
        a = RedisEventDedupe(redis_cluster_url, ttl_seconds=60, channel="slack")
        b = RedisEventDedupe(redis_cluster.seed_url, ttl_seconds=60, channel="slack")
        await a.start()
        await b.start()
        ids = [f"Ev{n:04d}" for n in range(30)]
        first = await asyncio.gather(*(worker.claim(i) for i in ids for worker in (a, b)))
        again = [await a.claim(i) for i in ids]
        await a.close()
        await b.close()
        return first, again

    first, again = asyncio.run(main())
    assert [first[2 * n] + first[2 * n + 1] for n in range(30)] == [1] * 30  # exactly one worker won each id
    assert again == [False] * 30
    sizes = [int(node.command("DBSIZE").strip()) for node in redis_cluster.nodes]
    assert sum(sizes) == 30 and sum(1 for size in sizes if size) >= 2  # the ids spread over the nodes
