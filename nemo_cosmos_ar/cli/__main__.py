import sys

from nemo_cosmos_ar.cli import main

sys.exit(main())
