"""`python main.py`: read settings from the environment and serve the wallet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from wallet.server import serve

if __name__ == "__main__":
    serve()
