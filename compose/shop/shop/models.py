"""One table: the orders the shop takes."""
from django.db import models


class Order(models.Model):
    """An order; `shipped` is set by the Celery task `ship`."""

    item = models.CharField(max_length=100)
    created = models.DateTimeField(auto_now_add=True)
    shipped = models.BooleanField(default=False)
