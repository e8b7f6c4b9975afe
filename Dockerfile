# One image for every MAE process: a service, the gateway, the operator, migrations.
#   docker build -t mae .
#   docker run mae nameko run --config config/production.yaml services.deploy.service:DeployService
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared shared
COPY services services
COPY gateway gateway
COPY localauth localauth
COPY sandbox sandbox
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 mae
WORKDIR /app
COPY --from=build /install /usr/local
COPY config config
COPY migrations migrations
COPY alembic.ini ./
COPY shared shared
COPY services services
COPY gateway gateway
ENV MAE_CONFIG=/app/config/production.yaml PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
USER 10001
EXPOSE 8080
CMD ["nameko", "run", "--config", "config/production.yaml", "gateway.service:GatewayService"]
