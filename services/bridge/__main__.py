"""`python -m services.bridge`: the same as `fleet bridge`."""

import sys

from services.cli import main

if __name__ == "__main__":
    main(["bridge", *sys.argv[1:]])
