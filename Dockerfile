# csbot serve in a container. Builds with access to the package registries only (PyPI, Debian);
# nothing is downloaded when it runs (HF_HUB_OFFLINE=1; the encoder comes from a PyPI package).
#
#   docker build -t csbot .
#   docker run --rm -v csbot-home:/var/lib/csbot csbot csbot train      # once: the demo's model ...
#   docker run --rm -v csbot-home:/var/lib/csbot csbot csbot index build  # ... and its Q&A index
#   docker run -d -p 5005:5005 -v csbot-home:/var/lib/csbot -e CSBOT_REDIS_URL=redis://redis:6379/0 csbot
#
# Your own bot: mount its folder and pass --config (docs/deploy.md).
FROM python:3.11-slim

# the CPU build of torch; set TORCH_INDEX to https://download.pytorch.org/whl/cu124 (and use a CUDA base image) for a GPU
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CSBOT_HOME=/var/lib/csbot

RUN pip install --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION"

WORKDIR /opt/csbot
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY csbot ./csbot
COPY nlu ./nlu
COPY retrieval ./retrieval
COPY training ./training
COPY configs ./configs
RUN pip install . && useradd --system --home-dir "$CSBOT_HOME" --create-home csbot

USER csbot
VOLUME ["/var/lib/csbot"]
EXPOSE 5005
HEALTHCHECK --interval=30s --timeout=3s --start-period=120s \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:5005/ready', timeout=2).status != 200)"
STOPSIGNAL SIGTERM
CMD ["csbot", "serve", "--host", "0.0.0.0", "--port", "5005"]
