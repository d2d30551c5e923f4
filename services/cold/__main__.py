"""`python -m services.cold`: the same as `fleet cold`."""

import sys

from services.cli import main

if __name__ == "__main__":
    main(["cold", *sys.argv[1:]])
