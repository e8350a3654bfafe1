"""Celery: the app the service sends runs with and the workers run them with."""
