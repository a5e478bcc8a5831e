"""``python -m bench``: run the whole benchmark suite (see ``bench/run.py``)."""

from bench.run import main

main()
