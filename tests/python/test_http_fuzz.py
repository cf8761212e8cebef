"""Property-based run of the HTTP API's OpenAPI document with schemathesis (pinned in
requirements.txt), bounded in examples and time, with a fixed seed: every response must be
documented, match its schema, and none may be a 5xx. Every check runs (schemathesis's
default), with the one per-operation exception in schemathesis.toml."""

import os
import pathlib
import subprocess
import sys


from conftest import PASSWORD


def test_the_openapi_document_holds_under_fuzzing(http, tmp_path):
    st = pathlib.Path(sys.executable).parent / "st"
    result = subprocess.run(
        [str(st), "--config-file", str(pathlib.Path(__file__).parent / "schemathesis.toml"),
         "run", f"{http}/v1/openapi.json", "--url", http,
         "--max-examples", "25", "--seed", "20261122",
         "--auth", f"admin:{PASSWORD}", "--request-timeout", "30",
         "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        # st_hooks.py teaches schemathesis to send `application/sql` bodies.
        env=dict(os.environ, SCHEMATHESIS_HOOKS="st_hooks",
                 PYTHONPATH=str(pathlib.Path(__file__).parent)),
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-6000:]
