"""ARES on A-OKVQA. With no arguments: the offline demo on our A-OKVQA-format samples.

accelerate launch recipes/ares_aokvqa.py
accelerate launch recipes/ares_aokvqa.py --config aokvqa_single_gpu_lora --set ares.data_root=/data/aokvqa
"""

import sys

import ares_scienceqa

from align.user_errors import run_command

if __name__ == "__main__":
    sys.exit(run_command(lambda: ares_scienceqa.main(default_config="ares_aokvqa_demo"), "ares_aokvqa"))
