import sys

from grokinterp.cli import main

sys.exit(main())
