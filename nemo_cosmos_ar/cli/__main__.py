import sys

from nemo_cosmos_ar.cli import main

if __name__ == "__main__":  # guarded: dist-checkpoint saves spawn processes that re-import __main__
    sys.exit(main())
