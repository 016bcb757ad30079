"""``cosmos-ar prepare-data`` under torchrun, one worker per rank.

torchrun --nproc_per_node 2 data_prepare.py --videos DIR --output DIR ...
"""

import sys

from nemo_cosmos_ar.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare-data", *sys.argv[1:]]))
