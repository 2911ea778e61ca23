# llm-gateway: docker build -t llm-gateway . && docker run -p 5000:5000 -v $PWD/config:/etc/llm-gateway llm-gateway
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LLM_GATEWAY_CONFIG=/etc/llm-gateway/gateway.yaml

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY tracking ./tracking
COPY evaluation ./evaluation
RUN pip install . && useradd --create-home --uid 10001 gateway && mkdir -p /var/lib/llm-gateway \
    && chown gateway /var/lib/llm-gateway

# The config is mounted here (a directory, so edits to the file are seen by reloads).
COPY config/gateway.yaml /etc/llm-gateway/gateway.yaml
USER gateway
WORKDIR /var/lib/llm-gateway
EXPOSE 5000
ENTRYPOINT ["llm-gateway", "serve", "--host", "0.0.0.0", "--port", "5000"]
