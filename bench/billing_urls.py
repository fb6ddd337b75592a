"""The platform's URLs plus /bench/bare/: a view that only stores the raw body, the reference `bench.billing`
compares the webhook's acknowledgement time with."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from percolate_platform.urls import urlpatterns as platform_urlpatterns

BARE_TABLE = "bench_bare_bodies"


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BARE_TABLE} (body) VALUES (%s)", [request.body])
    return JsonResponse({"received": True})


urlpatterns = [path("bench/bare/", bare), *platform_urlpatterns]
