"""Datasets in their released formats (ScienceQA, A-OKVQA) as typed `Problem` records, and prompt builders."""

from align.data.aokvqa import load_aokvqa
from align.data.errors import DatasetFormatError
from align.data.problem import Problem
from align.data.prompts import answer_target, build_prompt, build_target, chat_messages, rationale_target
from align.data.samples import load_sample_aokvqa, load_sample_scienceqa, sample_root
from align.data.scienceqa import load_scienceqa, load_scienceqa_hf
from align.data.select import load_problems

__all__ = [
    "DatasetFormatError",
    "Problem",
    "answer_target",
    "build_prompt",
    "build_target",
    "chat_messages",
    "load_aokvqa",
    "load_problems",
    "load_sample_aokvqa",
    "load_sample_scienceqa",
    "load_scienceqa",
    "load_scienceqa_hf",
    "rationale_target",
    "sample_root",
]
