"""The export sinks, one module each: webhook, files, S3 (`resources/export_sinks.py` opens one)."""
