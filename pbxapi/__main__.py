"""``python -m pbxapi COMMAND``: the PBX from the command line (see ``--help``)."""

import sys

from pbxapi.cli import main

if __name__ == "__main__":
    sys.exit(main())
