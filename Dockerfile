# The service image: API, worker and one-shot commands (migrate, setup) share it.
# Runtime dependencies only, pinned by requirements.lock; runs as a non-root user.
# Configured by BOOKING_* variables at run time only: with none set it refuses to start
# (the defaults are production's: no JWT secret, no development mode), so the image
# never trusts a secret from this repository. See README "Deploying".

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src

# Dependencies first, so a code change does not reinstall them. urllib3-future (for
# caldav's niquests) is built from source with URLLIB3_NO_OVERRIDE, so that it installs
# beside urllib3 instead of replacing it.
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && URLLIB3_NO_OVERRIDE=1 /opt/venv/bin/pip install --no-binary urllib3-future \
        -c requirements.lock -r requirements.txt

# The project itself, as a regular (non-editable) install.
COPY . .
RUN /opt/venv/bin/pip install --no-deps .


FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BOOKING_API_HOST=0.0.0.0 \
    BOOKING_API_PORT=8000
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin booking
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER booking
EXPOSE 8000
CMD ["booking", "api"]
