# hipcoach: one image for every process type (web, clock, run, and the release migration).
#   docker build -t hipcoach .
#   docker run --rm --env-file .env hipcoach hipcoach check web clock
#   docker run --rm -e DATABASE_URL=postgresql://... hipcoach hipcoach db upgrade
#   docker run --rm -p 8080:8080 --env-file .env hipcoach           # hipcoach web
# Inside the container the processes bind 0.0.0.0 (they detect /.dockerenv; HOST overrides)
# and serve /healthz and /metrics on PORT, clock and run included.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app

# The package with its dependencies (pyproject.toml pins the ranges).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY content ./content
COPY scheduler ./scheduler
RUN pip install . \
    && useradd --create-home --uid 10001 hipcoach \
    && mkdir -p /data && chown hipcoach /data

USER hipcoach
# Files the console would save (charts, exports) and the SQLite default, if ever used here.
WORKDIR /data

EXPOSE 8080
CMD ["hipcoach", "web"]
