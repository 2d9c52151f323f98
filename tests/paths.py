"""Where the tests' data lives, for test modules at any depth."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
SCHEMAS = ROOT / "schemas"
SEED = TESTS / "seed"
