"""ARES on A-OKVQA. With no arguments: the offline demo on our A-OKVQA-format samples.

accelerate launch recipes/ares_aokvqa.py
accelerate launch recipes/ares_aokvqa.py --config aokvqa_single_gpu_lora --set ares.data_root=/data/aokvqa
"""

import ares_scienceqa

if __name__ == "__main__":
    ares_scienceqa.main(default_config="ares_aokvqa_demo")
