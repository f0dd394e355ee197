# Multi-stage: build a wheel with everything, run it as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY gater ./gater
COPY generated ./generated
COPY proto ./proto
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data gater && mkdir -p /data && chown gater /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER gater
VOLUME ["/data"]
EXPOSE 50051
ENV GATER_LISTEN=0.0.0.0:50051 \
    GATER_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["gater", "health", "--addr", "127.0.0.1:50051"]
ENTRYPOINT ["gater"]
CMD ["node"]
