import os
import sys
from pathlib import Path

os.environ.setdefault("ANODIFF_NO_PROGRESS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
