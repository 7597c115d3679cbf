# A small image for the bot, installed from the hash-checked lock file.
# Build: docker build -t seedance-bot .      Run: docker compose up -d   (see compose.yaml)
# Or:    docker run --env-file .env -v seedance-data:/app/data seedance-bot
FROM python:3.11-slim

# HTTP_LISTEN_HOST: /healthz (and callbacks) must be reachable from outside the container's loopback; the
# HEALTHCHECK below runs inside the container, a published port or a proxy container does not.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DATABASE_PATH=/app/data/seedance-bot.sqlite3 \
    HTTP_LISTEN_HOST=0.0.0.0

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall them. --require-hashes: every
# package (and its dependencies) must be in the lock with a matching hash, so nothing unreviewed gets in.
# The lock also holds the build backend (setuptools), so the project is built without fetching anything.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install --no-deps --no-build-isolation . \
    && rm -rf build ./*.egg-info \
    && useradd --create-home --uid 10001 seedance \
    && mkdir -p /app/data \
    && chown seedance /app/data

USER seedance
VOLUME ["/app/data"]
# GET /healthz, and ModelArk callbacks when PUBLIC_CALLBACK_URL is set (publish behind a TLS proxy).
EXPOSE 8080
# Python's urllib, as slim images have no curl; urlopen raises (exit 1) on a refused connection or a non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["seedance-bot"]
CMD ["run"]
