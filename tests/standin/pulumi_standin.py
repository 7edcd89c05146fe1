"""Entry point of the stand-in `pulumi` CLI (see fakepulumi/__init__.py for what it models)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakepulumi.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
