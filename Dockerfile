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
ENTRYPOINT ["seedance-bot"]
CMD ["run"]
