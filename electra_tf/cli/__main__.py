"""`python -m electra_tf.cli ...`: the same as the `electra-tf` command."""

import sys

from electra_tf.cli import main

sys.exit(main())
