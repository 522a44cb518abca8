# syntax=docker/dockerfile:1
# One image for every role: web (Daphne), worker, beat and the simulator differ only by command.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /venv
COPY requirements.txt /tmp/requirements.txt
RUN /venv/bin/pip install -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=wallboard.settings \
    WALLBOARD_VAR_DIR=/var/lib/wallboard \
    STATIC_ROOT=/app/staticfiles
RUN groupadd --system wallboard && useradd --system --gid wallboard --home /app wallboard \
    && mkdir -p /var/lib/wallboard && chown wallboard:wallboard /var/lib/wallboard
COPY --from=build /venv /venv
WORKDIR /app
COPY --chown=wallboard:wallboard . /app
# collectstatic needs a key to import settings; this one is used for nothing else and never at run time.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0
USER wallboard
EXPOSE 8000
# The health endpoint answers without auth and never asks the PBX: it only reads Redis. It is
# asked under the first ALLOWED_HOSTS name (Django refuses any other Host).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,sys,urllib.request as u; h=os.environ.get('ALLOWED_HOSTS','localhost').split(',')[0].strip().lstrip('.'); r=u.Request('http://127.0.0.1:8000/api/v1/health/', headers={'Host': h}); sys.exit(0 if u.urlopen(r, timeout=4).status == 200 else 1)"
CMD ["python", "-m", "wallboard.web", "-b", "0.0.0.0", "-p", "8000", "wallboard.asgi:application"]
