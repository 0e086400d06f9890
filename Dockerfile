# Sara: one image for web, worker and beat (the command picks the process).
FROM python:3.12-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
# The admin's CSS and Sara's scripts, served by the web process itself (WhiteNoise) with
# DEBUG off. collectstatic needs settings but no secrets or database: DEBUG on for this step.
RUN DEBUG=1 .venv/bin/python manage.py collectstatic --no-input -v0

FROM python:3.12-slim
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 DEBUG=0
RUN useradd --create-home --uid 10001 sara && mkdir -p /run/sara-metrics && chown sara:sara /run/sara-metrics
WORKDIR /app
COPY --from=build --chown=sara:sara /app /app
USER sara
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status == 200 else 1)"
# Worker (one process per core): celery -A config worker --pool threads --concurrency 60 -l info
# Beat:   celery -A config beat -l info
# config/gunicorn.conf.py: the access log without query strings (webhook secrets stay out).
CMD ["gunicorn", "config.wsgi", "--config", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "4"]
