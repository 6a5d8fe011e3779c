# One image for every role in docker-compose.yml: the API, the Ray head and the (GPU) Ray workers.
# PyPI's torch wheels bundle the CUDA runtime, so a slim Python base works on GPU hosts with the
# NVIDIA container runtime (the driver comes from the host).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 OPTFORGE_DATA_DIR=/data
RUN apt-get update && apt-get install -y --no-install-recommends curl procps && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, so a code change does not reinstall torch and Ray.
COPY pyproject.toml README.md ./
RUN mkdir optforge && touch optforge/__init__.py && pip install ".[all]" && pip uninstall -y optforge
COPY optforge ./optforge
RUN pip install --no-deps .

RUN useradd --create-home --uid 1000 optforge && mkdir -p /data && chown optforge /data
USER optforge
VOLUME ["/data"]
EXPOSE 8000 6379 8265 10001
