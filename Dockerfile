# A small image for the bot. Build: docker build -t seedance-bot .
# Run:   docker run --env-file .env -v seedance-data:/app/data seedance-bot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATABASE_PATH=/app/data/seedance-bot.sqlite3

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
RUN pip install . \
    && useradd --create-home --uid 10001 seedance \
    && mkdir -p /app/data \
    && chown seedance /app/data

USER seedance
VOLUME ["/app/data"]
# ModelArk callbacks, only when PUBLIC_CALLBACK_URL is set (publish with -p 8080:8080 behind a TLS proxy).
EXPOSE 8080
ENTRYPOINT ["seedance-bot"]
CMD ["run"]
