"""The container files: compose names every service with what it needs (Docker cannot run here)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_web_worker_beat_postgres_redis_and_a_migration_step():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "beat", "postgres", "redis", "migrate"} <= set(services)
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://")
        assert env["DEBUG"] == "0"
        assert services[name]["env_file"] == ".env"  # the secrets, never in the file
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert "threads" in services["worker"]["command"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    assert services["migrate"]["command"][-2:] == ["migrate", "--no-input"]
    # The web process answers /health without waiting for anything but a finished migration.
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "--appendonly" in services["redis"]["command"]
    # Web processes keep one connection each and the worker's threads share a pool with
    # nothing set: each entry point picks its own (tests/config/test_settings.py).
    assert "DATABASE_POOL_MAX_SIZE" not in services["web"]["environment"]
    assert "DATABASE_POOL_MAX_SIZE" not in services["worker"]["environment"]
    # Under load the webhooks, which Meta times, win the CPU over the worker's backlog.
    assert services["worker"]["cpu_shares"] < services["web"].get("cpu_shares", 1024)


def test_dockerfile_is_multi_stage_non_root_with_a_health_check():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") >= 2
    assert "USER sara" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile
    assert "collectstatic" in dockerfile
    assert 'CMD ["gunicorn", "config.wsgi"' in dockerfile


def test_rabbitmq_override_points_every_celery_process_at_its_broker_and_keeps_redis():
    base = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    override = yaml.safe_load((ROOT / "compose.rabbitmq.yaml").read_text())["services"]
    rabbit = override["rabbitmq"]["environment"]
    expected = (
        f"amqp://{rabbit['RABBITMQ_DEFAULT_USER']}:{rabbit['RABBITMQ_DEFAULT_PASS']}"
        f"@rabbitmq:5672/{rabbit['RABBITMQ_DEFAULT_VHOST']}"
    )
    for name in ("web", "worker", "beat"):
        assert override[name]["environment"]["CELERY_BROKER_URL"] == expected
        assert override[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
        # Compose merges the override's environment into the base one: Redis stays for the limiter.
        assert base[name]["environment"]["REDIS_URL"].startswith("redis://")
    assert "healthcheck" in override["rabbitmq"]
