"""`python -m ctsentinel` is the `ctsentinel` command."""

import sys

from ctsentinel.cli import main

sys.exit(main())
