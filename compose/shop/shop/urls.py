"""URL map of the compose shop."""
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from . import views

urlpatterns = [
    path("healthz", views.healthz),
    path("orders", csrf_exempt(views.orders)),
]
