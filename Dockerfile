# LeNet Serve on the official TensorFlow image, pinned to the TensorFlow of pyproject.toml.
# GPU hosts: the default (-gpu) image, with the NVIDIA Container Toolkit on the host.
# CPU-only:  docker build --build-arg TF_IMAGE=tensorflow/tensorflow:2.21.0 .
ARG TF_IMAGE=tensorflow/tensorflow:2.21.0-gpu

# Stage 1: build the project's wheel (only our code: TensorFlow is already in the base image).
FROM ${TF_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY training ./training
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the runtime, without build leftovers.
FROM ${TF_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    LENET_MODELS_DIR=/models \
    LENET_JOBS_DIR=/data/jobs \
    LENET_HOST=0.0.0.0 \
    LENET_PORT=8000 \
    LENET_GRPC_PORT=8001
COPY --from=build /wheels /wheels
# The base image's tensorflow satisfies the pin, so pip adds only the service's own dependencies.
RUN python -m pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin lenet \
    && mkdir -p /data/jobs \
    && chown lenet:lenet /data/jobs
COPY --chown=lenet:lenet models /models
USER 10001
WORKDIR /home/lenet
# 8000: HTTP (REST, KServe V2 REST, the page, /metrics); 8001: gRPC (KServe V2, health, reflection).
EXPOSE 8000 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
# The server is PID 1 (exec form): docker stop's SIGTERM reaches it and it drains in-flight requests
# for up to LENET_GRACEFUL_SHUTDOWN_S (20 s; compose and Kubernetes wait 30 s).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]
