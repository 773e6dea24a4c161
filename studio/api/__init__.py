"""The token API for studio pipelines, mounted at /api/v1/ (see docs/API.md)."""
