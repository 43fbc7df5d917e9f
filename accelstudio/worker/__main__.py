"""`python -m accelstudio.worker`: run one job read from stdin (see accelstudio.worker.child)."""

from accelstudio.worker.child import main

if __name__ == "__main__":
    main()
