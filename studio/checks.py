"""Start-up checks: a configuration that cannot work is refused at start, in words.

Django runs these on `manage.py check`, on `migrate` (which the containers
run before they serve) and on runserver; /healthz reports the same problems
and is not 200 while any remains. Without them, S3_BUCKET set but the `s3`
extra missing passed every check, and then every render failed with the
cause only in the worker's log.
"""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from generation import catalog
from generation.providers import provider_for

S3_BACKEND = "storages.backends.s3.S3Storage"


def configuration_errors() -> list[checks.Error]:
    return [*_storage_errors(), *_provider_errors()]


def _storage_errors() -> list[checks.Error]:
    backend = settings.STORAGES["default"]["BACKEND"]
    try:
        import_string(backend)
    except (ImportError, ImproperlyConfigured) as error:
        if backend == S3_BACKEND:
            return [
                checks.Error(
                    f"S3_BUCKET is set, so images are stored in S3, but the S3 storage "
                    f"cannot be loaded ({error}).",
                    hint="Install the s3 extra (pip install '.[s3]': django-storages and "
                    "boto3), or unset S3_BUCKET to keep media on the filesystem.",
                    id="studio.E001",
                )
            ]
        return [
            checks.Error(
                f"The media storage {backend} cannot be loaded ({error}).", id="studio.E001"
            )
        ]
    return []


def _provider_errors() -> list[checks.Error]:
    errors = []
    for tier in catalog.TIERS:
        try:
            provider_for(tier)
        except ImproperlyConfigured as error:
            errors.append(checks.Error(str(error), id="studio.E002"))
    return errors


@checks.register()
def configuration_check(app_configs=None, **kwargs) -> list[checks.Error]:
    return configuration_errors()
