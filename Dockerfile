# One image for every MAE process: the gateway, each service, the operator, the migration Job.
#   docker build -t mae .
#   docker run mae nameko run --config config/production.yaml services.deploy.service:DeployService
# k8s/ runs it as user 10001 with a read-only root filesystem (only /tmp is writable).

FROM python:3.11-slim AS deps
WORKDIR /src
COPY pyproject.toml ./
# Only the pinned runtime dependencies from pyproject.toml (no test extras, no compilers:
# every pin has a manylinux wheel), installed into a prefix the final stage copies whole.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip install --no-cache-dir --disable-pip-version-check --prefix=/install -r requirements.txt

FROM python:3.11-slim
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /app mae
COPY --from=deps /install /usr/local
WORKDIR /app
# The code runs from /app (shared.config.ROOT): config/, migrations/ and the console's
# static files are found beside the packages. The sandbox, localauth and the CLI are
# development tools and stay out of the image.
COPY alembic.ini ./
COPY config config
COPY migrations migrations
COPY shared shared
COPY services services
COPY gateway gateway
COPY mae_operator mae_operator
# Operators' commands run in a service pod: python -m scripts.redrive / scripts.queue_migrate.
COPY scripts scripts
ENV PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONWARNINGS=ignore \
    MAE_CONFIG=/app/config/production.yaml \
    WEB_SERVER_ADDRESS=0.0.0.0:8000
USER 10001:10001
EXPOSE 8000
CMD ["nameko", "run", "--config", "config/production.yaml", "gateway.service:GatewayService"]
