# Contact Sheet: one image for the web server, both worker pools and the
# scheduler (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=studio.settings \
    DATA_DIR=/app/data

WORKDIR /app
RUN groupadd --system --gid 10001 studio \
    && useradd --system --uid 10001 --gid studio --home-dir /app --shell /usr/sbin/nologin studio

# Dependencies first, read from pyproject.toml, so a code change does not
# reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['s3']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# Editable, so the settings find templates/ and static/ beside the code.
# Static files are collected into the image (whitenoise serves them from
# there); the key below exists only for this build step.
RUN pip install --no-deps -e . \
    && DEBUG=0 SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /app/data/media \
    && chown -R studio:studio /app/data

USER studio
EXPOSE 8000

CMD ["gunicorn", "studio.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60", \
     "--access-logfile", "-", "--forwarded-allow-ips", "*"]
