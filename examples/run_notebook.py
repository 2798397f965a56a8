"""Execute a notebook headless (nbclient) and save it with its outputs: `make demo` uses it."""
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(source: str, dest: str) -> int:
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(source).parent)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        nbformat.write(notebook, dest)
        print(f"error: the notebook failed; partial output in {dest}\n{exc}", file=sys.stderr)
        return 1
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
