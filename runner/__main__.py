import sys

from runner.cli import main

# Guarded: DataLoader workers (spawn) re-import the main module, and must not start another run.
if __name__ == "__main__":
    sys.exit(main())
