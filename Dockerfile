# CPU image of counterfeit-check. Build: docker build -t counterfeit-check .
# Run:   docker run -p 8000:8000 -v cc-data:/data -e COUNTERFEIT_BOOTSTRAP_ADMIN_KEY=... counterfeit-check
FROM python:3.11-slim

ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
# The model the image serves (see README "Models").
ARG MODEL=open_clip:ViT-B-32@laion2b_s34b_b79k

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    COUNTERFEIT_DATA_DIR=/data COUNTERFEIT_HOST=0.0.0.0 COUNTERFEIT_PORT=8000 \
    COUNTERFEIT_MODEL=${MODEL} COUNTERFEIT_MODEL_CACHE=/opt/models

RUN useradd --create-home --uid 10001 counterfeit && mkdir -p /data /opt/models && chown counterfeit /data /opt/models
WORKDIR /app
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
COPY pyproject.toml README.md ./
COPY index ./index
COPY service ./service
COPY training ./training
RUN pip install --no-cache-dir .

USER counterfeit
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["counterfeit", "serve"]
