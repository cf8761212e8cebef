"""schemathesis hooks for test_http_fuzz.py (loaded through SCHEMATHESIS_HOOKS): the statement
stream takes its SQL as `application/sql`, which goes on the wire as text."""

import schemathesis

schemathesis.serializer.alias("application/sql", "text/plain")
