"""`python -m services.hot`: the same as `fleet hot`."""

import sys

from services.cli import main

if __name__ == "__main__":
    main(["hot", *sys.argv[1:]])
