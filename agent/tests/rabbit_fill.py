"""Declares a queue on RabbitMQ with real kombu/py-amqp, publishes 5 messages, takes 2 without
acknowledging them, prints READY and keeps the connection (so they stay unacked) until killed.

Usage: rabbit_fill.py AMQP_URL
"""
import sys
import time

from kombu import Connection, Exchange, Queue

with Connection(sys.argv[1]) as conn:
    queue = Queue("orders", Exchange("orders", type="direct"), routing_key="orders")
    producer = conn.Producer()
    for i in range(5):
        producer.publish({"order": i}, exchange=queue.exchange, routing_key="orders", declare=[queue])
    bound = queue(conn.default_channel)
    held = [bound.get(no_ack=False) for _ in range(2)]
    assert all(m is not None for m in held)
    print("READY", flush=True)
    while True:
        time.sleep(1)
