"""`python -m services.bridge`: the same as `fleet bridge`."""

from services.cli import main

if __name__ == "__main__":
    main(["bridge", *__import__("sys").argv[1:]])
