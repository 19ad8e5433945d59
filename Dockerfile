# One image with the whole Shillings stack under supervisord:
#   docker build -t shillings . && docker run -p 8080:8080 -v shillings-var:/app/var shillings
# MariaDB and Redis data, sockets, logs, the generated JWT secret and webhook key live in
# /app/var (a volume).
# Give it time to stop MariaDB cleanly: `docker stop -t 60`.
# The webhook delivery workers (program group hooks, HOOKS_PROCS of them) run in it too.
# docker-compose.yml runs the same image one piece per service instead.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        mariadb-server redis-server nginx \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /home/shillings --uid 10001 shillings

WORKDIR /app

# Dependencies first (cached while only the code changes); then the code, installed editable
# so that the migration files are read from the source tree.
COPY pyproject.toml ./
COPY shillings_proto ./shillings_proto
COPY shillings_app ./shillings_app
COPY shillings_web ./shillings_web
COPY shillings_stack ./shillings_stack
RUN python -m venv .venv \
    && .venv/bin/pip install --no-cache-dir --upgrade pip \
    && .venv/bin/pip install --no-cache-dir -e .

COPY supervisord.conf ./
COPY nginx ./nginx
COPY scripts ./scripts
RUN mkdir -p var && chown shillings:shillings var

# Every program runs as this user (mariadbd, redis, nginx master and workers included).
USER shillings
# Every program logs to stdout (`docker logs`), each line prefixed with its name (web_00 | …),
# nginx one access log line per request.
ENV SHILLINGS_VAR=/app/var \
    SHILLINGS_HTTP_HOST=0.0.0.0 \
    SHILLINGS_HTTP_PORT=8080 \
    SHILLINGS_LOG_STDOUT=1 \
    SHILLINGS_NGINX_ACCESS_LOG=/dev/stdout \
    PYTHONUNBUFFERED=1
VOLUME ["/app/var"]
EXPOSE 8080
# Healthy: /healthz is 200 through nginx on SHILLINGS_HTTP_PORT and from every web process
# (each has its app server and Redis connections), never through an HTTP proxy.
# docker-compose.yml gives each of its services its own check.
HEALTHCHECK --interval=5s --timeout=10s --start-period=60s --retries=3 \
    CMD [".venv/bin/python", "scripts/healthcheck.py"]

# Renders the configs from the environment, then execs supervisord in the foreground (PID 1).
CMD [".venv/bin/python", "scripts/stack.py", "run"]
