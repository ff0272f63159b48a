"""Fills Celery queues on Redis with real kombu (so the key layout, priorities included, is
kombu's own), leaves one message unacknowledged, and prints what kombu itself counts as JSON.

Usage: fill_celery.py REDIS_URL KEY_PREFIX
"""
import json
import os
import sys

import redis
from kombu import Connection, Exchange, Queue

url, prefix = sys.argv[1], sys.argv[2]
options = {"global_keyprefix": prefix} if prefix else {}

with Connection(url, transport_options=options) as conn:
    channel = conn.default_channel
    producer = conn.Producer()
    celery_q = Queue("celery", Exchange("celery", type="direct"), routing_key="celery", max_priority=10)
    emails_q = Queue("emails", Exchange("emails", type="direct"), routing_key="emails")
    for i, priority in enumerate([0, 0, 1, 3, 4, 5, 6, 7, 9, 9, 9]):
        producer.publish({"task": i}, exchange=celery_q.exchange, routing_key="celery",
                         declare=[celery_q], priority=priority)
    for i in range(4):
        producer.publish({"mail": i}, exchange=emails_q.exchange, routing_key="emails", declare=[emails_q])

    # Take one message without acknowledging it: kombu moves it to the "unacked" hash.
    consumer_conn = Connection(url, transport_options=options)
    simple = consumer_conn.SimpleQueue(emails_q)
    simple.get(timeout=5)

    client = channel.client
    keys = sorted(k.decode("latin-1") if isinstance(k, bytes) else k for k in client.keys("*"))
    plain = redis.Redis.from_url(url)
    lengths = {}
    for k in keys:
        if plain.type(k) == b"list":
            lengths[k] = plain.llen(k)
    result = {
        "lengths": lengths,
        "celery": channel._size("celery"),
        "emails": channel._size("emails"),
        "unacked": client.hlen("unacked"),
        "keys": keys,
    }
    print(json.dumps(result), flush=True)
    # Exit without closing: a clean close would restore the unacked message to its queue.
    os._exit(0)
