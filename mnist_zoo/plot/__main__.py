"""python -m mnist_zoo.plot CSV: see mnist_zoo.plot."""

import sys

from mnist_zoo.plot._command import main

sys.exit(main())
