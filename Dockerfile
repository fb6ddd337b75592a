# syntax=docker/dockerfile:1
# The platform image `percolate-platform`: one image, several processes (the Kubernetes manifests choose):
#   web      gunicorn percolate_platform.wsgi --bind 0.0.0.0:8000
#   gateway  python -m gateway --host 0.0.0.0 --port 8080   (uvicorn on gateway.asgi:application)
#   worker   celery -A percolate_platform worker
#   beat     celery -A percolate_platform beat
#   migrate  python manage.py migrate --noinput
#   backup   python manage.py backup_platform_db          (CronJob; needs pg_dump, installed below)
# Target `tiernode` adds the reference tier node (`python -m tiernode`, port 8000) used in dev in place of the
# `percolate` image. Runs as uid 10001 with a read-only root filesystem (writable: /tmp, /data mounts).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE} AS platform
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=percolate_platform.settings \
    PERCOLATE_VAR_DIR=/tmp/percolate \
    STATIC_ROOT=/app/staticfiles
# pg_dump/pg_restore for manage.py backup_platform_db and restore_platform_db (the backup CronJob): bookworm's client
# is PostgreSQL 15, which dumps servers up to 15. A newer server needs a newer client (PGDG's postgresql-client-NN).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 percolate \
 && useradd --system --uid 10001 --gid percolate --home-dir /app --shell /usr/sbin/nologin percolate
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root manage.py ./
COPY --chown=root:root percolate_platform ./percolate_platform
COPY --chown=root:root core ./core
COPY --chown=root:root accounts ./accounts
COPY --chown=root:root tenants ./tenants
COPY --chown=root:root billing ./billing
COPY --chown=root:root archival ./archival
COPY --chown=root:root gateway ./gateway
COPY --chown=root:root backups ./backups
COPY --chown=root:root moves ./moves
COPY --chown=root:root overview ./overview
# Compile bytecode and collect the admin's static files at build time: the root filesystem is read-only at run time.
RUN python -m compileall -q /app \
 && DJANGO_DEBUG=false DJANGO_SECRET_KEY=build-only PLATFORM_MASTER_KEY=$(python -c "print('0'*64)") \
    PLATFORM_SERVICE_TOKEN=build-only-build-only STRIPE_WEBHOOK_SECRETS=build-only python manage.py collectstatic --noinput -v0
USER 10001:10001
EXPOSE 8000 8080
CMD ["gunicorn", "percolate_platform.wsgi", "--bind", "0.0.0.0:8000", "--worker-tmp-dir", "/tmp"]

FROM platform AS tiernode
USER root
COPY --chown=root:root tiernode ./tiernode
RUN python -m compileall -q /app/tiernode
USER 10001:10001
EXPOSE 8000
CMD ["python", "-m", "tiernode"]

# The default build target is the platform image.
FROM platform
