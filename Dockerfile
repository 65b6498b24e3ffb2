# One image for the Dagster code location, its run and step pods, and the model server
# (`mlops-assets serve`). Dependencies come from the committed uv.lock.
FROM python:3.11.11-slim-bookworm AS base

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# The base image's Debian release decides these versions; its security updates must come in
# on each build, so they are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv

WORKDIR /app
# Dependencies first (cached while only the code changes), without the dev group.
# EXTRAS=gpu adds TensorFlow's CUDA libraries, for the image the GPU pods run.
ARG EXTRAS=""
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project ${EXTRAS:+--extra $EXTRAS}
COPY mlops_assets ./mlops_assets
COPY workspace.yaml dagster_cloud.yaml* ./
RUN uv sync --locked --no-dev ${EXTRAS:+--extra $EXTRAS}

# The commit the image was built from, recorded in every model's metadata.
ARG MLOPS_CODE_VERSION=unknown
# MLOPS_ENV=k8s and its settings are set where the image runs (Dagster chart values), so the
# same image also serves models, which needs none of them.
ENV MLOPS_CODE_VERSION=${MLOPS_CODE_VERSION}

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin mlops
USER 10001
EXPOSE 8080 4000
# No ENTRYPOINT: Dagster's launchers run `dagster api ...` in this image as the command.
CMD ["mlops-assets", "serve", "--host", "0.0.0.0", "--port", "8080"]
