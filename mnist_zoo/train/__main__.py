"""python -m mnist_zoo.train: see mnist_zoo.train._command."""

import sys

from mnist_zoo.train._command import main

sys.exit(main())
