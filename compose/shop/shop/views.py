"""Pages that touch every service: the database, the cache and the task queue."""
from django.core.cache import cache
from django.http import HttpResponseNotAllowed, JsonResponse

from .models import Order
from .tasks import ship


def healthz(request):
    """The agent's health check: 200 while the database answers."""
    return JsonResponse({"orders": Order.objects.count()})


def orders(request):
    """GET: the order count (cached 5 s); POST: a new order, shipped by the worker."""
    if request.method == "POST":
        order = Order.objects.create(item=request.POST.get("item", "book"))
        ship.delay(order.pk)
        cache.delete("order_count")
        return JsonResponse({"id": order.pk}, status=201)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET", "POST"])
    count = cache.get_or_set("order_count", Order.objects.count, 5)
    return JsonResponse({"orders": count})
