# shadowgate gateway image: `docker build -t shadowgate .`
# Run: docker run -p 8080:8080 -p 8081:8081 -v $PWD/config:/config shadowgate
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY scoring ./scoring
RUN pip install . && useradd --system --uid 10001 --home-dir /var/lib/shadowgate --create-home shadowgate

USER shadowgate
WORKDIR /var/lib/shadowgate
EXPOSE 8080 8081
VOLUME ["/config"]

HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8081/healthz', timeout=2).status != 200)"

ENTRYPOINT ["shadowgate"]
CMD ["serve", "--config", "/config/gateway.yaml"]
