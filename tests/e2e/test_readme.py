"""The README's curl examples work as written against a real server."""

import re
import subprocess
from pathlib import Path

from tests.e2e.server import PROJECT_ROOT

MARKER = "<!-- readme-api-example -->"


def readme_example() -> str:
    text = Path(PROJECT_ROOT, "README.md").read_text()
    after_marker = text.split(MARKER, 1)[1]
    return re.search(r"```bash\n(.*?)```", after_marker, re.DOTALL).group(1)


def test_readme_curl_examples(server_environment, start_server):
    server = start_server(server_environment)
    script = readme_example().replace("http://localhost:8000", server.base_url)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert '"email":"ada@example.com"' in output.replace(" ", "")
    assert re.search(r'"key":\s*"gv-[A-Za-z0-9_-]{43}"', output)
    assert output.strip().endswith("204")
