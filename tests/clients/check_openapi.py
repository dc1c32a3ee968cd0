"""Validates the gateway's OpenAPI document, then lets schemathesis fuzz every operation.

Usage: check_openapi.py BASE_URL API_KEY
Exit 0 when the document is valid OpenAPI and no request got a 5xx.
"""

import json
import subprocess
import sys
import tempfile
import urllib.request

from openapi_spec_validator import validate


def main() -> int:
    base, key = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(f"{base}/openapi.json") as response:
        document = json.load(response)
    validate(document)
    print(f"valid OpenAPI {document['openapi']}, {len(document['paths'])} paths")
    # schemathesis is a console script beside this interpreter.
    schemathesis = sys.executable.rsplit("/", 1)[0] + "/schemathesis"
    # In a directory of its own: schemathesis keeps a cache in its working directory.
    scratch = tempfile.TemporaryDirectory()
    run = subprocess.run(
        [
            schemathesis, "run", f"{base}/openapi.json",
            "-H", f"Authorization: Bearer {key}",
            "--checks", "not_a_server_error",
            "--max-examples", "20",
            "--seed", "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=scratch.name,
    )
    scratch.cleanup()
    print(run.stdout[-4000:])
    print(run.stderr[-2000:], file=sys.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
