"""Entry point of the frozen desktop bundle: the same `accelstudio` command, GUI and CLI alike.

The frozen executable is also the worker: `accelstudio --worker` is dispatched by accelstudio.cli.main.
A desktop launcher passes a model file as the only argument (`Exec=accelstudio %f`); accelstudio.cli.main
turns that into `--open FILE`.
"""

import multiprocessing
import sys


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a library that spawns through multiprocessing re-enters here
    from accelstudio.cli import main

    sys.exit(main(sys.argv[1:]))
