"""python -m mnist_zoo.search: see mnist_zoo.search._command."""

import sys

from mnist_zoo.search._command import main

sys.exit(main(restartable=True))
