# quotebot in a container: a slim Python base, CPU torch by default, a non-root user, data on a volume.
#
#   docker build -t quotebot .
#   docker build -t quotebot:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
#   docker run --env-file .env -v quotebot-data:/data quotebot          # or: docker compose up -d
#
# tests/test_deploy.py runs the wheel and install steps and the start and health commands of this file
# the same way, outside a container (no engine there), and lints it with hadolint.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY bot ./bot
COPY model ./model
COPY training ./training
COPY data ./data
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
# The PyTorch index to take torch from: the CPU build by default (small); a CUDA index for a GPU host.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir /wheels/quotebot-*.whl && rm -rf /wheels
# The user runs as 10001 (USER below, by number so any runtime can resolve it).
RUN useradd --system --uid 10001 --home-dir /data --no-create-home quotebot \
    && mkdir -p /data && chown quotebot:quotebot /data

# The database and the retrained models live on the volume; the bundled model is in the package.
ENV DB_PATH=/data/quotebot.db \
    MODELS_DIR=/data/models \
    HEALTH_HOST=127.0.0.1 \
    HEALTH_PORT=8080 \
    LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['HEALTH_PORT'], timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["quotebot"]
CMD []
