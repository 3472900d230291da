"""Datasets in their released formats (ScienceQA, A-OKVQA) as typed `Problem` records, and prompt builders."""

from align.data.problem import Problem

__all__ = ["Problem"]
