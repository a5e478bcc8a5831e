"""``python -m appserver``: the same entry point as the ``appserver`` console script."""

from appserver.cli import main

if __name__ == "__main__":
    main()
