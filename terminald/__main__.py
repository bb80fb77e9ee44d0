import sys

from terminald.cli import main

sys.exit(main())
