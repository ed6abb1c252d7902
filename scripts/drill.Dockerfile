# The weekly point-in-time drill's image (scripts/drill-on-runner.sh builds it): the
# server's major's own binaries, as the postgres:<major> image ships them (contrib, so the
# amcheck extension, included), and this checkout's agent, installed as on the runner:
# every dependency hash-checked from the lock, wheels only, then the agent with --no-deps.
ARG POSTGRES_MAJOR=18
FROM postgres:${POSTGRES_MAJOR}
RUN apt-get update \
 && apt-get install --yes --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /opt/source/
COPY backup_agent /opt/source/backup_agent
COPY scripts/server/requirements.lock scripts/build-requirements.lock /opt/source/locks/
RUN python3 -m venv /opt/backup-agent \
 && /opt/backup-agent/bin/pip install --quiet --disable-pip-version-check --require-hashes \
    --only-binary ':all:' --requirement /opt/source/locks/requirements.lock \
    --requirement /opt/source/locks/build-requirements.lock \
 && /opt/backup-agent/bin/pip install --quiet --disable-pip-version-check --no-deps \
    --no-build-isolation /opt/source
ENTRYPOINT ["/opt/backup-agent/bin/backup-agent"]
