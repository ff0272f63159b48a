"""A Celery app for the agent's tests: tasks that succeed, fail and retry once, on the
broker given by DIDBAN_TEST_BROKER. Workers run it with `-E`; clients send `task-sent` events
too (`task_send_sent_event`).

As a script, `celery_app.py BROKER ADD BOOM FLAKY [NAP]` sends that many tasks of each kind
(after one task sleeping NAP seconds, when given, so that they wait behind it on a worker of
concurrency 1) and prints what it sent as JSON."""
import json
import os
import sys
import time

from celery import Celery

broker = os.environ.get("DIDBAN_TEST_BROKER") or (sys.argv[1] if len(sys.argv) > 1 else "")
app = Celery("didban_test", broker=broker)
app.conf.task_send_sent_event = True
app.conf.worker_send_task_events = True
app.conf.broker_connection_retry_on_startup = True
if broker.startswith("amqp"):
    # The client exits right after sending: wait for the broker to confirm each message so
    # none is lost in the abrupt close.
    app.conf.broker_transport_options = {"confirm_publish": True}


@app.task(name="tests.add")
def add(x, y):
    return x + y


@app.task(name="tests.boom")
def boom():
    raise ValueError("boom")


@app.task(name="tests.flaky", bind=True, max_retries=3)
def flaky(self):
    if self.request.retries < 1:
        raise self.retry(countdown=0, exc=RuntimeError("first try fails"))
    return "ok"


@app.task(name="tests.nap")
def nap(seconds):
    time.sleep(seconds)


if __name__ == "__main__":
    n_add, n_boom, n_flaky = (int(a) for a in sys.argv[2:5])
    nap_seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    if nap_seconds > 0:
        nap.delay(nap_seconds)
    for i in range(n_add):
        add.delay(i, i)
    for _ in range(n_boom):
        boom.delay()
    for _ in range(n_flaky):
        flaky.delay()
    print(json.dumps({"add": n_add, "boom": n_boom, "flaky": n_flaky, "nap": nap_seconds}), flush=True)
