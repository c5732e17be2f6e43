"""Entry point given to spark-submit: runs diamond_sdk._runtime.runner (see its docstring for flags)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from diamond_sdk._runtime.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
