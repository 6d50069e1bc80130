# One image for the five Rapport services and the `rapport` command line.
#
# The command picks the service (docker-compose.yml and deploy/k8s/ set it):
#   python -m rapport.ingest        port 8001 (RAPPORT_INGEST_PORT)
#   python -m rapport.profile       port 8002 (RAPPORT_PROFILE_PORT)
#   python -m rapport.scoring       port 8003 (RAPPORT_SCORING_PORT)
#   python -m rapport.next_action   port 8004 (RAPPORT_NEXT_ACTION_PORT)
#   python -m rapport.console       port 8005 (RAPPORT_CONSOLE_PORT)
#   rapport topics --bootstrap kafka:9092   creates the Kafka topics (idempotent)
#
# Build: docker build -t rapport:local .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never

RUN pip install uv==0.13.9

WORKDIR /app

# Third-party dependencies first, from the lock only, so that this layer is
# reused while just the sources change.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/profile/pyproject.toml services/profile/
COPY services/scoring/pyproject.toml services/scoring/
COPY services/next-action/pyproject.toml services/next-action/
COPY services/console/pyproject.toml services/console/
RUN uv sync --frozen --all-packages --no-dev --no-install-workspace

# Then the workspace packages: rapport.shared (with the `rapport` CLI),
# rapport.ingest, rapport.profile, rapport.scoring, rapport.next_action,
# rapport.console.
COPY shared/ shared/
COPY services/ services/
RUN uv sync --frozen --all-packages --no-dev

# Non-root user. The profile service's stream processor (faust) keeps only
# scratch files, under the temp dir (RAPPORT_PROFILE_DATA_DIR); state is in Redis.
RUN groupadd --system --gid 10001 rapport \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/rapport \
       --create-home --shell /usr/sbin/nologin rapport

ENV PATH="/app/.venv/bin:${PATH}" \
    RAPPORT_HOST=0.0.0.0

WORKDIR /var/lib/rapport
USER 10001:10001

EXPOSE 8001 8002 8003 8004

# No default service: compose and Kubernetes give the command.
CMD ["rapport", "--help"]
