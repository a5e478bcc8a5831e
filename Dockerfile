# appserver: the Codex app-server protocol over WebSocket, as a non-root container.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APPSERVER_HOME=/data

# The commands the agent runs (read-only / workspace-write sandboxes) are confined with
# Landlock + seccomp, which need no privileges: that is the backend a default container gets,
# as it refuses the user namespaces bubblewrap needs. bubblewrap stays installed for runtimes
# that allow them (then `auto` prefers it). A runtime whose seccomp profile refuses the Landlock
# system calls leaves neither: the server then says so (configWarning) and asks before running
# such commands. Not pinned: the slim base's Debian release fixes the version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY appserver ./appserver
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 appserver \
    && mkdir -p /data \
    && chown appserver:appserver /data
COPY docker/entrypoint.sh /usr/local/bin/appserver-entrypoint
RUN chmod 0755 /usr/local/bin/appserver-entrypoint

# Numeric, so that orchestrators can verify runAsNonRoot.
USER 10001
VOLUME ["/data"]
EXPOSE 8765

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8765/healthz', timeout=2).status == 200 else 1)"]

ENTRYPOINT ["/usr/local/bin/appserver-entrypoint"]
CMD ["serve", "--ws", "0.0.0.0:8765"]
